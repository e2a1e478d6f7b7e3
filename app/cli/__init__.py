"""The ``reprise`` command: server side (serve, worker, db, users, workers, demo) and client
side (init, lint, submit, status, compare, power, rescore), the client side speaking HTTP to any
server. Output for people goes through rich; errors exit non-zero with one clear line."""

from __future__ import annotations

import typer

from app.cli import client, server, tools

app = typer.Typer(
    name="reprise",
    help="Reprise: re-run machine-learning claims and publish what holds up.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
server.register(app)
client.register(app)
tools.register(app)


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
