from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.conftest import Account
from tests.reviews.kit import make_user


@pytest.fixture
async def rita(app: FastAPI) -> Account:
    return await make_user(app, "rita", "reviewer", "Rita Reviewer")


@pytest.fixture
async def ravi(app: FastAPI) -> Account:
    return await make_user(app, "ravi", "reviewer")
