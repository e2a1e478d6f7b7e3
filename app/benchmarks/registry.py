"""The in-memory view of the catalog, loaded once at start-up (benchmark rows are immutable)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.benchmarks.manifest import BenchmarkManifest, satisfies
from app.benchmarks.models import Benchmark


@dataclass(frozen=True)
class CatalogEntry:
    id: int
    manifest: BenchmarkManifest
    content_hash: str
    ingest_bundle_sha256: str
    score_bundle_sha256: str

    @property
    def slug(self) -> str:
        return self.manifest.id

    @property
    def version(self) -> int:
        return self.manifest.version


@dataclass
class Catalog:
    by_key: dict[tuple[str, int], CatalogEntry] = field(default_factory=dict)
    by_id: dict[int, CatalogEntry] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, rows: list[Benchmark]) -> Catalog:
        catalog = cls()
        for row in rows:
            catalog.add(row)
        return catalog

    def add(self, row: Benchmark) -> CatalogEntry:
        entry = CatalogEntry(
            id=row.id,
            manifest=BenchmarkManifest.model_validate(row.manifest),
            content_hash=row.content_hash,
            ingest_bundle_sha256=row.ingest_bundle_sha256,
            score_bundle_sha256=row.score_bundle_sha256,
        )
        self.by_key[(entry.slug, entry.version)] = entry
        self.by_id[entry.id] = entry
        return entry

    def get(self, slug: str, version: int | None = None) -> CatalogEntry | None:
        if version is not None:
            return self.by_key.get((slug, version))
        versions = [v for (s, v) in self.by_key if s == slug]
        return self.by_key[(slug, max(versions))] if versions else None

    def versions(self, slug: str) -> list[int]:
        return sorted(v for (s, v) in self.by_key if s == slug)

    def latest(self) -> list[CatalogEntry]:
        slugs = sorted({s for (s, _v) in self.by_key})
        return [e for s in slugs if (e := self.get(s)) is not None]

    def requirements(self) -> set[str]:
        return {e.manifest.requires_key for e in self.by_id.values()}

    def satisfiable(self, labels: dict[str, str]) -> list[str]:
        """The job requirement strings a worker with ``labels`` may run."""
        return sorted(r for r in self.requirements() if satisfies(labels, r))
