"""Fixtures for the benchmark tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .benchkit import write_package

PackageFactory = Callable[..., Path]


@pytest.fixture
def make_package(tmp_path: Path) -> PackageFactory:
    counter = iter(range(1000))

    def factory(code: str, **kwargs: Any) -> Path:
        return write_package(tmp_path / f"package-{next(counter)}", code, **kwargs)

    return factory
