"""Accounts and tokens: registration, the caller's profile, token management, worker tokens."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.core.deps import CurrentUser, Maintainer, SessionDep, SettingsDep
from app.core.errors import Forbidden, NotFound
from app.core.pagination import Page, PageDep, make_page
from app.users import repository, service
from app.users.models import Role
from app.users.schemas import (
    TokenCreate,
    TokenIssued,
    TokenOut,
    UserCreate,
    UserCreated,
    UserOut,
    WorkerCreate,
    WorkerIssued,
    WorkerOut,
)

router = APIRouter(prefix="/v1", tags=["users"])


@router.post("/users", status_code=status.HTTP_201_CREATED, operation_id="register_user")
async def register_user(
    body: UserCreate, session: SessionDep, settings: SettingsDep
) -> UserCreated:
    """Register a member account; the answer carries its token, shown this once."""
    if not settings.allow_registration:
        raise Forbidden("self-registration is switched off on this server; ask a maintainer")
    issued = await service.create_user(
        session, name=body.name, role=Role.member, display_name=body.display_name
    )
    user = await repository.get_user(session, issued.token.user_id)
    assert user is not None
    return UserCreated(
        user=UserOut.model_validate(user),
        token=TokenIssued.model_validate(
            {**TokenOut.model_validate(issued.token).model_dump(), "token": issued.plaintext}
        ),
    )


@router.get("/me", operation_id="get_me")
async def get_me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.get("/users/{name}", operation_id="get_user")
async def get_user(name: str, session: SessionDep) -> UserOut:
    user = await repository.get_user_by_name(session, name)
    if user is None or user.disabled_at is not None:
        raise NotFound(f"no user {name!r}")
    return UserOut.model_validate(user)


@router.get("/tokens", operation_id="list_tokens")
async def list_tokens(user: CurrentUser, session: SessionDep) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in await repository.list_tokens(session, user.id)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED, operation_id="create_token")
async def create_token(body: TokenCreate, user: CurrentUser, session: SessionDep) -> TokenIssued:
    issued = await service.issue_token(session, user=user, name=body.name)
    return TokenIssued.model_validate(
        {**TokenOut.model_validate(issued.token).model_dump(), "token": issued.plaintext}
    )


@router.delete(
    "/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="revoke_token"
)
async def revoke_token(token_id: int, user: CurrentUser, session: SessionDep) -> Response:
    await service.revoke_token(session, user=user, token_id=token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/workers", status_code=status.HTTP_201_CREATED, operation_id="create_worker")
async def create_worker(body: WorkerCreate, user: Maintainer, session: SessionDep) -> WorkerIssued:
    """Create a worker token (maintainers only); the token is shown this once."""
    issued = await service.create_worker_token(
        session, actor=user, name=body.name, labels=body.labels
    )
    return WorkerIssued.model_validate(
        {**WorkerOut.model_validate(issued.worker).model_dump(), "token": issued.plaintext}
    )


@router.get("/workers", operation_id="list_workers")
async def list_workers(user: Maintainer, session: SessionDep, page: PageDep) -> Page[WorkerOut]:
    rows, total = await repository.list_workers(session, limit=page.limit, offset=page.offset)
    return make_page([WorkerOut.model_validate(w) for w in rows], params=page, total=total)


@router.delete(
    "/workers/{worker_id}", status_code=status.HTTP_204_NO_CONTENT, operation_id="revoke_worker"
)
async def revoke_worker(worker_id: int, user: Maintainer, session: SessionDep) -> Response:
    await service.revoke_worker_token(session, actor=user, worker_id=worker_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
