"""Threaded comments: trees with paginated threads, safe Markdown, the 15-minute edit window,
moderation with a visible reason and an audit trail, author marks and version labels."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.audit.models import AuditEvent
from app.reviews.markdown import render_markdown
from app.reviews.models import Comment
from tests.conftest import Account
from tests.reviews.kit import submit


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


HOSTILE = [
    "<script>alert(1)</script>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[data](data:text/html;base64,PHNjcmlwdD4=)",
    '<img src=x onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<div style="background:url(javascript:alert(1))">raw</div>',
    "![pixel](https://tracker.example/p.png)",
    "<iframe src=https://evil.example></iframe>",
    "[ok](https://example.org/page) and `<b>code</b>`",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_markdown_renders_hostile_input_inert(text: str) -> None:
    html = render_markdown(text)
    for tag, attrs in _tags(html):
        assert tag not in {"script", "img", "iframe", "div", "style"}, html
        for name, value in attrs.items():
            assert not name.startswith("on"), html
            assert name != "style", html
            if name == "href":
                assert value is not None, html
                assert value.startswith(("https://", "http://")), html
    assert "javascript:" not in "".join(str(a) for _t, a in _tags(html))


def test_markdown_keeps_formatting_and_marks_links() -> None:
    html = render_markdown("**bold** _it_ [site](https://example.org)\n\n- a\n- b\n")
    assert "<strong>bold</strong>" in html
    assert "<em>it</em>" in html
    assert "<li>a</li>" in html
    assert '<a href="https://example.org" rel="nofollow ugc noopener noreferrer">site</a>' in html


@pytest.fixture
async def sub(client: httpx.AsyncClient, alice: Account) -> dict[str, Any]:
    return await submit(client, alice)


async def _post(
    client: httpx.AsyncClient, who: Account, sub_id: int, body: str, parent: int | None = None
) -> dict[str, Any]:
    resp = await client.post(
        f"/v1/submissions/{sub_id}/comments",
        headers=who.headers,
        json={"body": body, **({"parent_id": parent} if parent else {})},
    )
    assert resp.status_code == 201, resp.text
    out: dict[str, Any] = resp.json()
    return out


async def test_a_script_in_a_comment_comes_back_inert_through_the_api(
    client: httpx.AsyncClient, bob: Account, sub: dict[str, Any]
) -> None:
    posted = await _post(client, bob, sub["id"], '<script>alert("x")</script> [a](javascript:x)')
    listed = (await client.get(f"/v1/submissions/{sub['id']}/comments")).json()["items"][0]
    for html in (posted["body_html"], listed["body_html"]):
        assert "<script" not in html
        assert 'href="javascript' not in html
        assert "&lt;script&gt;" in html
    assert listed["body"] == '<script>alert("x")</script> [a](javascript:x)'  # source, as JSON text


async def test_threads_nest_replies_and_paginate_top_level(
    client: httpx.AsyncClient, alice: Account, bob: Account, sub: dict[str, Any]
) -> None:
    sid = sub["id"]
    first = await _post(client, bob, sid, "First thread")
    reply = await _post(client, alice, sid, "Author answers", parent=first["id"])
    deeper = await _post(client, bob, sid, "Thanks", parent=reply["id"])
    second = await _post(client, bob, sid, "Second thread")
    third = await _post(client, alice, sid, "Third thread")
    assert deeper["thread_id"] == first["id"]
    assert deeper["depth"] == 2

    page = (await client.get(f"/v1/submissions/{sid}/comments", params={"limit": 2})).json()
    assert page["pagination"] == {"limit": 2, "offset": 0, "total": 3, "next_offset": 2}
    top = page["items"]
    assert [c["id"] for c in top] == [first["id"], second["id"]]
    assert [r["id"] for r in top[0]["replies"]] == [reply["id"]]
    assert [r["id"] for r in top[0]["replies"][0]["replies"]] == [deeper["id"]]
    assert top[0]["replies"][0]["author"] == {
        "name": "alice",
        "display_name": None,
        "role": "member",
        "is_submission_author": True,
    }
    assert top[0]["author"]["is_submission_author"] is False
    rest = await client.get(f"/v1/submissions/{sid}/comments", params={"limit": 2, "offset": 2})
    assert [c["id"] for c in rest.json()["items"]] == [third["id"]]

    other = await submit(client, bob)
    cross = await client.post(
        f"/v1/submissions/{other['id']}/comments",
        headers=bob.headers,
        json={"body": "hi", "parent_id": first["id"]},
    )
    assert cross.status_code == 422
    assert (
        await client.post(f"/v1/submissions/{sid}/comments", json={"body": "x"})
    ).status_code == 401


async def test_author_edits_within_fifteen_minutes_with_a_marker(
    app: FastAPI, client: httpx.AsyncClient, alice: Account, bob: Account, sub: dict[str, Any]
) -> None:
    comment = await _post(client, bob, sub["id"], "tpyo")
    url = f"/v1/comments/{comment['id']}"
    assert comment["edited"] is False
    assert (await client.patch(url, headers=alice.headers, json={"body": "x"})).status_code == 404
    edited = await client.patch(url, headers=bob.headers, json={"body": "typo"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["edited"] is True
    assert edited.json()["body_html"] == "<p>typo</p>\n"
    async with app.state.db.session(write=True) as s:
        await s.execute(
            update(Comment)
            .where(Comment.id == comment["id"])
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16))
        )
    late = await client.patch(url, headers=bob.headers, json={"body": "too late"})
    assert late.status_code == 409
    assert "15 minutes" in late.json()["detail"]


async def test_hidden_comment_keeps_its_reason_and_loses_its_body_for_non_maintainers(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    maintainer: Account,
    sub: dict[str, Any],
) -> None:
    spam = await _post(client, bob, sub["id"], "Buy my course")
    answer = await _post(client, alice, sub["id"], "No thanks", parent=spam["id"])
    url = f"/v1/comments/{spam['id']}/hide"
    assert (
        await client.post(url, headers=alice.headers, json={"reason": "spam"})
    ).status_code == 403
    hidden = await client.post(url, headers=maintainer.headers, json={"reason": "off-topic"})
    assert hidden.status_code == 200, hidden.text
    listing = f"/v1/submissions/{sub['id']}/comments"
    for headers in ({}, alice.headers, bob.headers):
        node = (await client.get(listing, headers=headers)).json()["items"][0]
        assert node["body"] is None
        assert node["body_html"] is None
        assert node["hidden"]["notice"] == "hidden by a maintainer: off-topic"
        assert node["replies"][0]["id"] == answer["id"]  # the thread stays
        assert "course" not in str(node)
    seen = (await client.get(listing, headers=maintainer.headers)).json()["items"][0]
    assert seen["body"] == "Buy my course"
    assert seen["hidden"]["reason"] == "off-topic"
    blocked = await client.patch(
        f"/v1/comments/{spam['id']}", headers=bob.headers, json={"body": "edited away"}
    )
    assert blocked.status_code == 409
    shown = await client.post(f"/v1/comments/{spam['id']}/unhide", headers=maintainer.headers)
    assert shown.json()["hidden"] is None
    async with app.state.db.session() as s:
        events = (
            (
                await s.execute(
                    select(AuditEvent)
                    .where(AuditEvent.object_type == "comment")
                    .order_by(AuditEvent.id)
                )
            )
            .scalars()
            .all()
        )
    assert [(e.action, e.actor_id, e.object_id) for e in events] == [
        ("comment.hide", maintainer.id, str(spam["id"])),
        ("comment.unhide", maintainer.id, str(spam["id"])),
    ]
    assert events[0].detail["reason"] == "off-topic"


async def test_threads_of_earlier_versions_stay_labelled(
    client: httpx.AsyncClient, alice: Account, bob: Account, sub: dict[str, Any]
) -> None:
    from tests.helpers import targz, toy_files, upload

    early = await _post(client, bob, sub["id"], "About v1")
    v2 = await client.post(
        f"/v1/submissions/{sub['id']}/versions", headers=alice.headers, **upload(targz(toy_files()))
    )
    assert v2.status_code == 202
    late = await _post(client, bob, sub["id"], "About v2")
    reply = await _post(client, alice, sub["id"], "Fixed in v2", parent=early["id"])
    items = (await client.get(f"/v1/submissions/{sub['id']}/comments")).json()["items"]
    assert [(c["id"], c["version"]) for c in items] == [(early["id"], 1), (late["id"], 2)]
    assert items[0]["replies"][0]["version"] == 2
    assert items[0]["replies"][0]["id"] == reply["id"]
    v1_only = await client.get(f"/v1/submissions/{sub['id']}/comments", params={"version": 1})
    assert [c["id"] for c in v1_only.json()["items"]] == [early["id"]]


async def test_comments_of_a_withdrawn_submission_are_hidden_from_others(
    client: httpx.AsyncClient, alice: Account, bob: Account, sub: dict[str, Any]
) -> None:
    await _post(client, bob, sub["id"], "hello")
    await client.post(f"/v1/submissions/{sub['id']}/withdraw", headers=alice.headers)
    assert (await client.get(f"/v1/submissions/{sub['id']}/comments")).status_code == 404
    again = await client.post(
        f"/v1/submissions/{sub['id']}/comments", headers=bob.headers, json={"body": "still?"}
    )
    assert again.status_code == 404
    own = await client.get(f"/v1/submissions/{sub['id']}/comments", headers=alice.headers)
    assert own.status_code == 200


async def test_a_comment_flood_is_answered_429_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, bob: Account, sub: dict[str, Any]
) -> None:
    app.state.settings.quotas.comments_per_hour = 3
    for n in range(3):
        await _post(client, bob, sub["id"], f"comment {n}")
    resp = await client.post(
        f"/v1/submissions/{sub['id']}/comments", json={"body": "one too many"}, headers=bob.headers
    )
    assert resp.status_code == 429, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(resp.headers["Retry-After"]) <= 3600
    assert "the limit is 3" in resp.json()["detail"]
    listed = (await client.get(f"/v1/submissions/{sub['id']}/comments")).json()
    assert [c["body"] for c in listed["items"]] == ["comment 0", "comment 1", "comment 2"]
