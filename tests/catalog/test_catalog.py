"""The benchmark catalog at start-up: validated manifests, verified data, immutable versions."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.benchmarks.catalog import CatalogError, discover, load_folder
from app.core.config import REPO_ROOT, Settings
from app.main import create_app
from tests.conftest import FIXTURE_BENCHMARKS


def _copy_toy(tmp_path: Path) -> Path:
    root = tmp_path / "benchmarks"
    shutil.copytree(FIXTURE_BENCHMARKS / "toy", root / "toy")
    return root


def test_every_shipped_benchmark_is_valid() -> None:
    loaded = discover(REPO_ROOT / "benchmarks")
    ids = {b.manifest.id for b in loaded}
    assert {
        "quadratic-illcond",
        "rosenbrock",
        "logreg-digits",
        "mlp-digits",
        "custom-command",
    } <= ids


def test_a_data_checksum_mismatch_stops_start_up(tmp_path: Path) -> None:
    root = _copy_toy(tmp_path)
    (root / "toy" / "data" / "test.npz").write_bytes(b"tampered")
    with pytest.raises(CatalogError, match=r"data.test checksum mismatch"):
        load_folder(root / "toy")


def test_an_unknown_manifest_key_is_named(tmp_path: Path) -> None:
    root = _copy_toy(tmp_path)
    manifest = root / "toy" / "benchmark.toml"
    manifest.write_text(manifest.read_text() + "\nfresh_seed = 4\n")
    with pytest.raises(CatalogError, match=r"fresh_seed: unknown key"):
        load_folder(root / "toy")


def test_folder_name_must_match_id(tmp_path: Path) -> None:
    root = _copy_toy(tmp_path)
    (root / "toy").rename(root / "other")
    with pytest.raises(CatalogError, match="differs from its folder name"):
        load_folder(root / "other")


async def test_changed_content_under_the_same_version_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    """The first start records toy v1; a harness edit without a version bump stops the next."""
    root = _copy_toy(tmp_path)
    first = create_app(settings.model_copy(update={"benchmarks_dir": root}))
    async with first.router.lifespan_context(first):
        pass
    harness = root / "toy" / "harness.py"
    harness.write_text(harness.read_text() + "\n# a silent protocol change\n")
    second = create_app(settings.model_copy(update={"benchmarks_dir": root}))
    with pytest.raises(CatalogError, match="changed on disk"):
        async with second.router.lifespan_context(second):
            pass
    manifest = root / "toy" / "benchmark.toml"
    manifest.write_text(manifest.read_text().replace("version = 1", "version = 2"))
    third = create_app(settings.model_copy(update={"benchmarks_dir": root}))
    async with third.router.lifespan_context(third):
        transport = httpx.ASGITransport(app=third)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = (await client.get("/v1/benchmarks/toy")).json()
            assert body["version"] == 2
            assert body["versions"] == [1, 2]
            old = (await client.get("/v1/benchmarks/toy", params={"version": 1})).json()
            assert old["version"] == 1


async def test_replicas_starting_together_record_each_version_once(
    settings: Settings, tmp_path: Path
) -> None:
    """Two API processes starting at once on a new database: both come up, one row per version
    (PostgreSQL serialises the sync with an advisory lock; SQLite with BEGIN IMMEDIATE)."""
    root = _copy_toy(tmp_path)
    apps = [create_app(settings.model_copy(update={"benchmarks_dir": root})) for _ in range(3)]

    async def start(app: FastAPI) -> list[dict[str, object]]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return list((await client.get("/v1/benchmarks")).json()["items"])

    listings = await asyncio.gather(*(start(app) for app in apps))
    for items in listings:
        assert [(item["id"], item["version"]) for item in items] == [("toy", 1)]
    engine = create_async_engine(settings.effective_database_url)
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM benchmark"))).scalar_one()
    await engine.dispose()
    assert count == 1


async def test_benchmark_listing(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/benchmarks")).json()
    assert [b["id"] for b in body["items"]] == ["toy", "toy-gpu"]
    toy = (await client.get("/v1/benchmarks/toy")).json()
    assert toy["metrics"][0]["name"] == "score"
    assert toy["limits"]["timeout_s"] == 30
    assert (await client.get("/v1/benchmarks/nope")).status_code == 404
