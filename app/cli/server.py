"""Server-side commands: serve, worker, db upgrade, users create, workers create, demo."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.core.config import Settings, get_settings

console = Console()
err = Console(stderr=True)

db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
workers_app = typer.Typer(help="Worker tokens.", no_args_is_help=True)


def upgrade_database(settings: Settings) -> None:
    """Apply every Alembic revision to the configured database."""
    from alembic import command
    from alembic.config import Config

    from app.core.config import REPO_ROOT

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.attributes["url"] = settings.effective_database_url
    cfg.attributes["configure_logger"] = False
    command.upgrade(cfg, "head")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database (REPRISE_DATABASE_URL, or SQLite under REPRISE_DATA_DIR) to head."""
    settings = get_settings()
    upgrade_database(settings)
    console.print(f"[green]database is at head[/]: {_safe_url(settings.effective_database_url)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def _create_user(settings: Settings, name: str, role: str) -> str:
    from app.core.db import Database
    from app.users.models import Role
    from app.users.service import create_user

    db = Database(settings.effective_database_url)
    try:
        async with db.session(write=True) as session:
            issued = await create_user(session, name=name, role=Role(role))
        return issued.plaintext
    finally:
        await db.dispose()


async def _create_worker(settings: Settings, name: str, labels: dict[str, str], actor: str) -> str:
    from app.core.db import Database
    from app.users.models import Role, User
    from app.users.repository import get_user_by_name
    from app.users.service import create_worker_token

    db = Database(settings.effective_database_url)
    try:
        async with db.session(write=True) as session:
            user = await get_user_by_name(session, actor)
            if user is None:  # the embedded worker of `serve --with-worker`: a system actor
                user = User(name=actor, role=Role.maintainer.value)
                session.add(user)
                await session.flush()
            issued = await create_worker_token(session, actor=user, name=name, labels=labels)
        return issued.plaintext
    finally:
        await db.dispose()


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"label {part!r} is not key=value")
        labels[key] = value
    return labels


@users_app.command("create")
def users_create(
    name: str,
    role: Annotated[str, typer.Option(help="member, reviewer or maintainer")] = "member",
) -> None:
    """Create an account and print its token (shown this once)."""
    if role not in ("member", "reviewer", "maintainer"):
        raise typer.BadParameter("role must be member, reviewer or maintainer")
    token = asyncio.run(_create_user(get_settings(), name, role))
    err.print(f"created {role} [bold]{name}[/]; its token (shown once, store it now):")
    console.print(token)


@workers_app.command("create")
def workers_create(
    name: str,
    labels: Annotated[str, typer.Option(help="k=v,k=v labels, e.g. gpu=a100")] = "",
    actor: Annotated[str, typer.Option(help="the maintainer creating it")] = "system",
) -> None:
    """Create a worker token (shown this once)."""
    token = asyncio.run(_create_worker(get_settings(), name, parse_labels(labels), actor))
    err.print(f"created worker token [bold]{name}[/] (shown once):")
    console.print(token)


def docker_available() -> bool:
    """True when a Docker engine answers."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def embedded_worker(  # an idle embedded worker asks every 5 s, so it stops within 5 s
    server: str, token: str, backend: str, concurrency: int
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``reprise worker`` as a child process for as long as the block lasts."""
    env = {**os.environ, "REPRISE_WORKER_TOKEN": token}
    cmd = [
        sys.executable,
        "-m",
        "app.cli",
        "worker",
        "--server",
        server,
        "--backend",
        backend,
        "--concurrency",
        str(concurrency),
        "--wait-s",
        "5",
        "--worker-id",
        f"embedded-{os.getpid()}",
    ]
    proc = subprocess.Popen(cmd, env=env)  # noqa: S603 - our own interpreter and module
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
    app.add_typer(users_app, name="users")
    app.add_typer(workers_app, name="workers")

    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="port to bind")] = 8000,
        with_worker: Annotated[bool, typer.Option(help="also run an embedded worker")] = False,
        backend: Annotated[str, typer.Option(help="auto, docker or local")] = "auto",
        concurrency: Annotated[int, typer.Option(help="embedded worker slots")] = 1,
        migrate: Annotated[bool, typer.Option(help="apply migrations first")] = True,
    ) -> None:
        """Run the API server (migrations first), optionally with an embedded worker."""
        import uvicorn

        from app.main import create_app

        settings = get_settings()
        if migrate:
            upgrade_database(settings)
        chosen = backend if backend != "auto" else ("docker" if docker_available() else "local")
        if with_worker and chosen == "local":
            if not settings.allow_unsandboxed:
                err.print(
                    "[yellow]no Docker engine: the embedded worker uses the local backend, "
                    "which is NOT a sandbox; allowing it for this server (trusted use only)[/]"
                )
            os.environ["REPRISE_ALLOW_UNSANDBOXED"] = "true"
            get_settings.cache_clear()
            settings = get_settings()
        app_ = create_app(settings)
        if not with_worker:
            # Reprise logs every request itself, with its request id: no second access log.
            uvicorn.run(app_, host=host, port=port, log_config=None, access_log=False)
            return
        token = asyncio.run(_create_worker(settings, f"embedded-{os.getpid()}", {}, "system"))
        config = uvicorn.Config(app_, host=host, port=port, log_config=None, access_log=False)
        srv = uvicorn.Server(config)
        with embedded_worker(f"http://{host}:{port}", token, chosen, concurrency):
            srv.run()

    @app.command()
    def worker(
        server: Annotated[
            str, typer.Option(envvar="REPRISE_SERVER", help="API base URL")
        ] = "http://127.0.0.1:8000",
        token: Annotated[
            str, typer.Option(envvar=["REPRISE_WORKER_TOKEN", "REPRISE_TOKEN"], help="worker token")
        ] = "",
        backend: Annotated[str, typer.Option(help="docker or local")] = "docker",
        concurrency: Annotated[int, typer.Option(min=1, max=64)] = 1,
        labels: Annotated[str, typer.Option(help="k=v,k=v; at most those of the token")] = "",
        worker_id: Annotated[str, typer.Option(help="stable id (labels its containers)")] = "",
        health_file: Annotated[str, typer.Option(help="JSON health file path")] = "",
        wait_s: Annotated[float, typer.Option(help="lease long-poll seconds")] = 20.0,
        workdir: Annotated[str, typer.Option(help="scratch and cache directory")] = "",
    ) -> None:
        """Lease jobs from a server and run them (docker: sandboxed; local: trusted only)."""
        from runners import logs
        from runners.cli import run_worker
        from runners.config import WorkerConfig

        if not token:
            raise typer.BadParameter("a worker token is needed: --token or REPRISE_WORKER_TOKEN")
        config = WorkerConfig.from_options(
            server=server,
            token=token,
            backend=backend,
            concurrency=concurrency,
            labels=parse_labels(labels),
            worker_id=worker_id or None,
            health_file=Path(health_file) if health_file else None,
            wait_s=wait_s,
            workdir=Path(workdir) if workdir else None,
        )
        logs.configure(
            level=config.log_level, log_format=config.log_format, worker_id=config.worker_id
        )
        raise typer.Exit(run_worker(config))

    @app.command()
    def demo(
        keep_serving: Annotated[bool, typer.Option(help="keep the server up afterwards")] = False,
        port: Annotated[int, typer.Option()] = 8000,
        backend: Annotated[str, typer.Option(help="auto, docker or local")] = "auto",
    ) -> None:
        """A real end-to-end replication of the examples on a fresh SQLite database."""
        from app.cli.demo import run_demo

        started = time.monotonic()
        code = run_demo(port=port, backend=backend, keep_serving=keep_serving)
        err.print(f"demo finished in {time.monotonic() - started:.0f} s")
        raise typer.Exit(code)
