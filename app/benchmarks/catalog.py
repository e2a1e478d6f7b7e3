"""Reading the benchmark folders: validate each manifest, verify its data, hash its content,
build the per-phase bundles workers download, and record it in the database.

A benchmark version is immutable: content that changed under an unchanged version stops the
server at start-up with an error, never a silent overwrite.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.benchmarks.manifest import BenchmarkManifest
from app.benchmarks.models import Benchmark
from app.core.blobs import BlobStore
from app.core.db import utcnow
from app.core.validation import describe_errors, first_problem

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key of the start-up sync ("REPRISE" in ASCII, under 2**63).
CATALOG_SYNC_LOCK = 0x52455052495345

_SKIP_NAMES = {"__pycache__", ".DS_Store", ".pytest_cache", ".mypy_cache"}


class CatalogError(Exception):
    """A benchmark folder is invalid or changed without a version bump."""


@dataclass(frozen=True)
class LoadedBenchmark:
    folder: Path
    manifest: BenchmarkManifest
    content_hash: str
    files: tuple[tuple[str, str], ...]  # (relative path, sha256), sorted


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(folder: Path) -> list[Path]:
    files: list[Path] = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in _SKIP_NAMES or part.endswith(".pyc") for part in rel.parts):
            continue
        if path.is_symlink():
            raise CatalogError(f"{path}: benchmark folders may not contain symlinks")
        if path.is_file():
            files.append(path)
    return files


def load_folder(folder: Path) -> LoadedBenchmark:
    """Validate one benchmark folder and hash its content."""
    manifest_path = folder / "benchmark.toml"
    try:
        raw = tomllib.loads(manifest_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{manifest_path}: TOML syntax error: {exc}") from exc
    try:
        manifest = BenchmarkManifest.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"{manifest_path}: {first_problem(describe_errors(exc))}") from exc
    if manifest.id != folder.name:
        raise CatalogError(f"{manifest_path}: id {manifest.id!r} differs from its folder name")
    if not (folder / "harness.py").is_file():
        raise CatalogError(f"{folder}: harness.py is missing")
    for role, spec in (("train", manifest.data.train), ("test", manifest.data.test)):
        if spec is None:
            continue
        data_path = folder / spec.path
        if not data_path.is_file():
            raise CatalogError(f"{manifest_path}: data.{role}.path {spec.path} does not exist")
        actual = _sha256_file(data_path)
        if actual != spec.sha256:
            raise CatalogError(
                f"{manifest_path}: data.{role} checksum mismatch for {spec.path}: "
                f"manifest says {spec.sha256}, file is {actual}"
            )
    files = tuple((str(p.relative_to(folder)), _sha256_file(p)) for p in _walk(folder))
    content = hashlib.sha256("\n".join(f"{rel}\0{sha}" for rel, sha in files).encode()).hexdigest()
    return LoadedBenchmark(folder=folder, manifest=manifest, content_hash=content, files=files)


def discover(benchmarks_dir: Path) -> list[LoadedBenchmark]:
    """Every benchmark folder (one holding ``benchmark.toml``) under ``benchmarks_dir``."""
    if not benchmarks_dir.is_dir():
        raise CatalogError(f"benchmarks directory {benchmarks_dir} does not exist")
    loaded = [load_folder(p.parent) for p in sorted(benchmarks_dir.glob("*/benchmark.toml"))]
    seen: set[tuple[str, int]] = set()
    for b in loaded:
        key = (b.manifest.id, b.manifest.version)
        if key in seen:
            raise CatalogError(f"benchmark {key[0]} version {key[1]} is defined twice")
        seen.add(key)
    return loaded


def _add_file(tar: tarfile.TarFile, path: Path, arcname: str) -> None:
    info = tarfile.TarInfo(arcname)
    info.size = path.stat().st_size
    info.mode = 0o644
    info.mtime = 0
    with path.open("rb") as fh:
        tar.addfile(info, fh)


def build_bundle(loaded: LoadedBenchmark, phase: str) -> bytes:
    """A deterministic tar: ``harness/`` (the folder minus data/), ``train/`` and, for the
    score phase only, ``test/``. The hidden test data never enters an ingest bundle."""
    data = loaded.manifest.data
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, _sha in loaded.files:
            if rel.split("/", 1)[0] == "data":
                continue
            _add_file(tar, loaded.folder / rel, f"harness/{rel}")
        if data.train is not None:
            _add_file(
                tar, loaded.folder / data.train.path, "train/" + data.train.path[len("data/") :]
            )
        if phase == "score" and data.test is not None:
            _add_file(tar, loaded.folder / data.test.path, "test/" + data.test.path[len("data/") :])
    return buf.getvalue()


async def sync_catalog(
    session: AsyncSession, *, blobs: BlobStore, benchmarks_dir: Path
) -> list[Benchmark]:
    """Record every benchmark on disk; refuse changed content under an unchanged version.

    Replicas starting together sync one at a time: on PostgreSQL a transaction-scoped advisory
    lock (otherwise both would insert the same new version and one would die on the unique
    constraint); SQLite's caller holds the write lock already (``BEGIN IMMEDIATE``)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(CATALOG_SYNC_LOCK)))
    rows: list[Benchmark] = []
    for loaded in discover(benchmarks_dir):
        m = loaded.manifest
        row = (
            await session.execute(
                select(Benchmark).where(Benchmark.slug == m.id, Benchmark.version == m.version)
            )
        ).scalar_one_or_none()
        if row is not None:
            if row.content_hash != loaded.content_hash:
                raise CatalogError(
                    f"benchmark {m.id} version {m.version} changed on disk (content hash "
                    f"{loaded.content_hash[:12]} != recorded {row.content_hash[:12]}); any change "
                    "of data, protocol or metric needs a version bump in benchmark.toml"
                )
            row.last_seen_at = utcnow()
            for sha in (row.ingest_bundle_sha256, row.score_bundle_sha256):
                if not blobs.exists(sha):  # a fresh data dir with an old database
                    blobs.put_bytes(
                        build_bundle(
                            loaded, "score" if sha == row.score_bundle_sha256 else "ingest"
                        )
                    )
            rows.append(row)
            continue
        ingest_sha = blobs.put_bytes(build_bundle(loaded, "ingest"))
        score_sha = blobs.put_bytes(build_bundle(loaded, "score"))
        row = Benchmark(
            slug=m.id,
            version=m.version,
            title=m.title,
            kind=m.kind,
            description=m.description,
            manifest=m.model_dump(mode="json"),
            content_hash=loaded.content_hash,
            ingest_bundle_sha256=ingest_sha,
            score_bundle_sha256=score_sha,
            requires=m.requires_key,
            last_seen_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        logger.info(
            "recorded benchmark %s version %s (%s)", m.id, m.version, loaded.content_hash[:12]
        )
        rows.append(row)
    return rows
