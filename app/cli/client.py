"""Client-side commands for researchers: init, lint, submit, status (and the statistics tools).

They talk HTTP to any Reprise server (``--server`` / ``REPRISE_SERVER``, ``--token`` /
``REPRISE_TOKEN``); ``lint`` also works offline against a local benchmarks folder.
"""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, BinaryIO, ParamSpec, TypeVar

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from app.cli.scaffold import write_skeleton

console = Console()
err = Console(stderr=True)

ServerOpt = Annotated[str, typer.Option(envvar="REPRISE_SERVER", help="server base URL")]
TokenOpt = Annotated[str, typer.Option(envvar="REPRISE_TOKEN", help="your API token")]
DEFAULT_SERVER = "http://127.0.0.1:8000"
P = ParamSpec("P")
R = TypeVar("R")
FINAL = {
    "succeeded",
    "user_error",
    "timeout",
    "oom",
    "invalid_output",
    "infrastructure_error",
    "cancelled",
}


class CliError(Exception):
    """A message for the person at the terminal; the command exits with status 1."""


def friendly(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a CliError as one red line and exit 1, instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(1) from None
        except httpx.HTTPError as exc:
            err.print(f"[red]error:[/] cannot reach the server: {exc}")
            raise typer.Exit(1) from None

    return wrapper


def _problem_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}: {resp.text[:300]}"
    lines = [f"{body.get('title', 'error')} ({resp.status_code}): {body.get('detail', '')}"]
    for e in body.get("errors") or []:
        lines.append(f"  - {e.get('loc')}: {e.get('msg')}")
    if resp.headers.get("retry-after"):
        lines.append(f"  retry after {resp.headers['retry-after']} s")
    if body.get("request_id"):
        lines.append(f"  request id {body['request_id']}")
    return "\n".join(lines)


def api(server: str, token: str = "", timeout: float = 60.0) -> httpx.Client:
    headers = {"User-Agent": "reprise-cli"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)


def _check(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        raise CliError(_problem_text(resp))
    return resp.json() if resp.content else None


def _as_archive(path: Path, workdir: Path) -> Path:
    """A directory is packed (deterministic tar.gz, links refused); an archive is used as is."""
    from runners.archives import ArchiveError, pack_directory

    if path.is_dir():
        out = workdir / f"{path.resolve().name or 'package'}.tar.gz"
        try:
            summary = pack_directory(path, out)
        except ArchiveError as exc:
            raise CliError(f"cannot pack {path}: {exc.message}") from exc
        err.print(f"packed {path} → {summary.file_count} files, {summary.archive_bytes} bytes")
        return out
    if not path.is_file():
        raise CliError(f"{path} is neither a package directory nor an archive")
    return path


def _print_lint(lint: dict[str, Any]) -> None:
    for e in lint.get("errors", []):
        console.print(f"[red]✗ error[/] {e['loc']}: {e['msg']}")
    table = Table(title="reproducibility checklist", show_lines=False)
    table.add_column("")
    table.add_column("check")
    table.add_column("points", justify="right")
    table.add_column("reason")
    for c in lint.get("checks", []):
        mark = "[green]✓[/]" if c["passed"] else "[yellow]✗[/]"
        table.add_row(
            mark, f"{c['part']}:{c['id']}", f"{c['points']:g}/{c['max_points']:g}", c["reason"]
        )
    if lint.get("checks"):
        console.print(table)
    for w in lint.get("warnings", []):
        console.print(f"[yellow]! warning[/] {w}")


def _local_lookup(benchmarks_dir: Path | None, server: str) -> Any:
    from app.benchmarks.catalog import CatalogError, discover
    from app.benchmarks.manifest import BenchmarkManifest

    local: dict[tuple[str, int], BenchmarkManifest] = {}
    if benchmarks_dir is not None and benchmarks_dir.is_dir():
        try:
            local = {
                (b.manifest.id, b.manifest.version): b.manifest for b in discover(benchmarks_dir)
            }
        except CatalogError as exc:
            err.print(f"[yellow]ignoring local benchmarks: {exc}[/]")

    def lookup(slug: str, version: int) -> BenchmarkManifest | None:
        if (slug, version) in local:
            return local[(slug, version)]
        try:
            with api(server, timeout=10) as c:
                resp = c.get(f"/v1/benchmarks/{slug}", params={"version": version})
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        d = resp.json()
        return BenchmarkManifest.model_validate(
            {
                "id": d["id"],
                "version": d["version"],
                "title": d["title"],
                "kind": d["kind"],
                "description": d["description"],
                "fresh_seeds": d["fresh_seeds"],
                "limits": d["limits"],
                "data": d["data"],
                "metrics": [{k: v for k, v in m.items()} for m in d["metrics"]],
            }
        )

    return lookup


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly
    def init(
        directory: Path,
        benchmark: Annotated[
            str, typer.Option(help="benchmark id, e.g. logreg-digits")
        ] = "logreg-digits",
        benchmarks_dir: Annotated[Path | None, typer.Option(help="local benchmarks folder")] = None,
    ) -> None:
        """Write a valid package skeleton, with comments, for a benchmark."""
        from app.core.config import REPO_ROOT

        lookup = _local_lookup(benchmarks_dir or REPO_ROOT / "benchmarks", DEFAULT_SERVER)
        try:
            written = write_skeleton(directory, benchmark=benchmark, lookup=lookup)
        except (FileExistsError, ValueError) as exc:
            raise CliError(str(exc)) from exc
        for path in written:
            console.print(f"wrote {path}")
        console.print(
            f"next: edit {directory}/reprise.toml, then [bold]reprise lint {directory}[/]"
        )

    @app.command()
    @friendly
    def lint(
        path: Path,
        server: ServerOpt = DEFAULT_SERVER,
        benchmarks_dir: Annotated[Path | None, typer.Option(help="local benchmarks folder")] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="print the lint report as JSON")
        ] = False,
    ) -> None:
        """The server's checks and reproducibility lint, run locally (exit 1 on errors)."""
        from app.core.config import REPO_ROOT, get_settings
        from app.submissions.package import inspect_package
        from app.submissions.router import archive_limits

        settings = get_settings()
        lookup = _local_lookup(benchmarks_dir or REPO_ROOT / "benchmarks", server)
        with tempfile.TemporaryDirectory(prefix="reprise-lint-") as tmp:
            archive = _as_archive(path, Path(tmp))
            report = inspect_package(
                archive,
                lookup=lookup,
                limits=archive_limits(settings),
                approved_bases=settings.approved_bases,
            )
        lint_report = report.lint_report()
        if report.archive_error is not None:
            lint_report["errors"].insert(
                0,
                {
                    "loc": report.archive_error.entry or "archive",
                    "msg": report.archive_error.message,
                },
            )
        if as_json:
            console.print_json(json.dumps(lint_report))
        else:
            _print_lint(lint_report)
        if lint_report["errors"]:
            raise typer.Exit(1)
        if not as_json:
            console.print("[green]the package passes the server's checks[/]")

    @app.command()
    @friendly
    def submit(
        path: Path,
        server: ServerOpt = DEFAULT_SERVER,
        token: TokenOpt = "",
        submission: Annotated[
            int | None, typer.Option(help="upload as a new version of this id")
        ] = None,
        wait: Annotated[bool, typer.Option(help="follow the jobs until they end")] = False,
    ) -> None:
        """Pack (if a directory) and upload a package; prints the lint report and the URL."""
        if not token:
            raise CliError("a token is needed: --token or REPRISE_TOKEN")
        with tempfile.TemporaryDirectory(prefix="reprise-submit-") as tmp:
            archive = _as_archive(path, Path(tmp))
            body = upload_package(server, token, archive, submission_id=submission)
        _print_lint(body["version"]["lint_report"])
        console.print(
            f"[green]submitted[/] #{body['id']} version {body['latest_version']}: "
            f"{len(body['jobs'])} jobs queued"
        )
        console.print(f"  {body['links']['web']}")
        if wait:
            follow(server, token, body["id"])

    @app.command()
    @friendly
    def status(
        submission_id: int,
        server: ServerOpt = DEFAULT_SERVER,
        token: TokenOpt = "",
        watch: Annotated[bool, typer.Option(help="refresh until every job ended")] = False,
    ) -> None:
        """Show a submission's jobs and, once scored, its verdict."""
        if watch:
            follow(server, token, submission_id)
            return
        with api(server, token) as c:
            body = _check(c.get(f"/v1/submissions/{submission_id}"))
        print_status(body)


def upload_package(server: str, token: str, archive: Path, *, submission_id: int | None) -> Any:
    """Stream an archive to the server with a progress bar."""
    size = archive.stat().st_size
    url = f"/v1/submissions/{submission_id}/versions" if submission_id else "/v1/submissions"
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"uploading {archive.name}", total=size)

        class Tracked:
            def __init__(self, fh: BinaryIO) -> None:
                self.fh = fh

            def read(self, n: int = -1) -> bytes:
                chunk = self.fh.read(n)
                progress.update(task, advance=len(chunk))
                return chunk

        with archive.open("rb") as fh, api(server, token, timeout=600) as c:
            resp = c.post(url, files={"package": (archive.name, Tracked(fh), "application/gzip")})  # type: ignore[dict-item]
    return _check(resp)


def print_status(body: dict[str, Any]) -> None:
    v = body["version"]
    console.print(
        f"[bold]#{body['id']} {body['title']}[/] by {body['owner']} on {body['benchmark']}"
        f" — version {v['number']} {v['status']}"
    )
    counts = v.get("job_counts", {})
    console.print("  jobs: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items())))
    verdict = v.get("verdict")
    if verdict:
        console.print(
            f"  verdict: [bold]{verdict['claim_verdict']}[/]  quality {verdict.get('quality')}"
        )
        if verdict.get("explanation"):
            console.print(f"  {verdict['explanation']}")


def follow(server: str, token: str, submission_id: int, poll_s: float = 1.0) -> dict[str, Any]:
    """Poll until every job ended, with a progress bar; returns the final submission."""
    with (
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            "{task.completed}/{task.total} jobs",
            console=err,
            transient=True,
        ) as progress,
        api(server, token) as c,
    ):
        task = progress.add_task(f"submission #{submission_id}", total=None)
        while True:
            body: dict[str, Any] = _check(c.get(f"/v1/submissions/{submission_id}"))
            jobs = body["jobs"]
            done = sum(1 for j in jobs if j["status"] in FINAL)
            progress.update(task, total=len(jobs), completed=done)
            if body["version"]["status"] in ("finished", "cancelled") and done == len(jobs):
                break
            time.sleep(poll_s)
    print_status(body)
    return body
