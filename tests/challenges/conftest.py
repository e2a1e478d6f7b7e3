from __future__ import annotations

import pytest
from fastapi import FastAPI

from tests.conftest import Account
from tests.reviews.kit import make_user


@pytest.fixture
async def carol(app: FastAPI) -> Account:
    return await make_user(app, "carol")


@pytest.fixture
async def dan(app: FastAPI) -> Account:
    return await make_user(app, "dan")
