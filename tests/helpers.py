"""Test helpers: migrate a database with Alembic, build packages, list leftovers."""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[1]


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["configure_logger"] = False
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def reset_database(url: str) -> None:
    """An empty, migrated database at ``url`` (PostgreSQL: schema dropped; SQLite: new file)."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.core.config import normalise_database_url

    url = normalise_database_url(url)
    if url.startswith("postgresql"):

        async def reset() -> None:
            engine = create_async_engine(url)
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await engine.dispose()

        asyncio.run(reset())
    migrate(url)


TOY_OPTIMIZER = """
class SGD:
    def __init__(self, params, *, lr=0.1):
        self.params = params
        self.lr = lr

    def step(self, grads):
        for p, g in zip(self.params, grads):
            p -= self.lr * g
"""


def toy_manifest(**overrides: Any) -> str:
    """A valid reprise.toml for the toy fixture benchmark; ``overrides`` replace whole sections."""
    sections = {
        "top": "format = 1\n",
        "package": '[package]\nname = "toy-sgd"\nversion = "1.0.0"\ntitle = "Plain SGD on toy"\n'
        'description = "Plain stochastic gradient descent with a constant step size."\n'
        'authors = ["Ada Lovelace <ada@example.org>"]\nlicense = "MIT"\n'
        'tags = ["sgd", "baseline"]\n',
        "benchmark": '[benchmark]\nid = "toy"\nversion = 1\n',
        "entry": '[entry]\noptimizer = "sgd:SGD"\n',
        "hyperparameters": "[hyperparameters]\nlr = 0.1\n",
        "claim": '[claim]\nseeds = [0, 1, 2]\nvariance_sources = ["init", "noise"]\n'
        'compute = "1 CPU core, under a second per seed"\n',
        "metrics": "[claim.metrics.score]\nmean = 2.0\nvalues = [1.9, 2.0, 2.1]\n",
        "environment": '[environment]\nbase = "python-numpy"\npython = "3.11"\n',
    }
    sections.update(overrides)
    return "\n".join(v for v in sections.values() if v)


def toy_files(manifest: str | None = None, **extra: str | bytes) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        "reprise.toml": manifest if manifest is not None else toy_manifest(),
        "sgd.py": TOY_OPTIMIZER,
        "README.md": "# Toy SGD\n",
        "LICENSE": "MIT License\n",
    }
    files.update(extra)
    return files


def targz(files: dict[str, str | bytes], *, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in sorted(files.items()):
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zipped(files: dict[str, str | bytes], *, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in sorted(files.items()):
            zf.writestr(prefix + name, content)
    return buf.getvalue()


def upload(data: bytes, filename: str = "package.tar.gz") -> dict[str, Any]:
    return {"files": {"package": (filename, data, "application/octet-stream")}}


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


async def table_counts(app: Any) -> dict[str, int]:
    """Rows per table that intake may write (to prove a rejection left nothing)."""
    from sqlalchemy import func, select

    from app.models import AuditEvent, Job, Submission, SubmissionVersion

    out = {}
    async with app.state.db.session() as session:
        for model in (Submission, SubmissionVersion, Job, AuditEvent):
            out[model.__tablename__] = int(
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
            )
    return out


def storage_snapshot(app: Any) -> tuple[list[Path], list[Path]]:
    """Every file in the blob store and in the scratch space."""
    blobs = app.state.blobs
    return files_under(blobs.root), files_under(blobs.scratch)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_command(port: int, *options: str) -> list[str]:
    """uvicorn serving the API factory on 127.0.0.1:``port``, quiet, plus ``options``."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "app.main:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        *options,
    ]


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL: no server outlives its benchmark."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
