"""Reviewer expertise, ranked suggestions, conflicts of interest, assignments and declines."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.reviews.matching import Candidate, keywords, normalise_author, rank
from app.users.models import User
from tests.conftest import Account
from tests.helpers import toy_manifest
from tests.reviews.kit import make_user, submit


def _manifest(authors: list[str], name: str = "toy-sgd", tags: str = '["sgd", "baseline"]') -> str:
    quoted = ", ".join(f'"{a}"' for a in authors)
    return toy_manifest(
        package=f'[package]\nname = "{name}"\nversion = "1.0.0"\ntitle = "Plain SGD on toy"\n'
        f'description = "Plain SGD."\nauthors = [{quoted}]\nlicense = "MIT"\ntags = {tags}\n'
    )


def test_the_formula_weighs_the_benchmark_double_and_penalises_open_assignments() -> None:
    weights = keywords(["sgd", "baseline"], "toy")
    assert weights == {"sgd": 1.0, "baseline": 1.0, "toy": 2.0}
    a, b, c = (User(id=i, name=n, role="reviewer") for i, n in enumerate(["ann", "ben", "cy"]))
    ranked = rank(
        weights,
        [
            Candidate(a, ("sgd", "toy"), open_assignments=1),  # 3/4, then / 1.5 = 0.5
            Candidate(b, ("sgd",), open_assignments=0),  # 1/4 = 0.25
            Candidate(c, ("baseline", "sgd"), open_assignments=0),  # 2/4 = 0.5, idle: first
        ],
    )
    assert [(s.user.name, s.score, s.relevance) for s in ranked] == [
        ("cy", 0.5, 0.5),
        ("ann", 0.5, 0.75),
        ("ben", 0.25, 0.25),
    ]
    assert normalise_author("  Ada   Lovelace <ada@example.org> ") == "ada lovelace"


async def test_expertise_is_replaced_and_read_back(
    client: httpx.AsyncClient, rita: Account
) -> None:
    resp = await client.put(
        "/v1/me/expertise", headers=rita.headers, json={"tags": ["toy", "sgd", "toy"]}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"tags": ["sgd", "toy"]}
    bad = await client.put("/v1/me/expertise", headers=rita.headers, json={"tags": ["Not OK"]})
    assert bad.status_code == 422
    assert (await client.get("/v1/me/expertise", headers=rita.headers)).json()["tags"] == [
        "sgd",
        "toy",
    ]


async def test_suggestions_rank_by_overlap_and_load_and_exclude_conflicts(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: Account,
    maintainer: Account,
    rita: Account,
    ravi: Account,
) -> None:
    cora = await make_user(app, "cora", "reviewer", "Cora Coauthor")
    dave = await make_user(app, "dave", "reviewer")
    nina = await make_user(app, "nina", "reviewer", "Nina Named")
    member = await make_user(app, "moe")
    for who, tags in [
        (rita, ["toy", "sgd"]),
        (ravi, ["sgd"]),
        (cora, ["toy", "sgd", "baseline"]),
        (dave, ["toy", "sgd", "baseline"]),
        (nina, ["toy"]),
        (member, ["toy", "sgd", "baseline"]),
    ]:
        await client.put("/v1/me/expertise", headers=who.headers, json={"tags": tags})
    # alice's submission names Nina as a co-author: Nina is an author.
    target = await submit(client, alice, _manifest(["Alice A <a@x.org>", "Nina Named"]))
    # Cora and alice share another submission (owned by a third person, naming both).
    third = await make_user(app, "theo")
    await submit(client, third, _manifest(["Theo", "cora", "ALICE"], name="other-pkg"))
    # Dave has an open assignment elsewhere, which halves his score.
    elsewhere = await submit(client, third, _manifest(["Theo"], name="third-pkg"))
    resp = await client.post(
        f"/v1/submissions/{elsewhere['id']}/assignments",
        headers=maintainer.headers,
        json={"reviewer": "dave"},
    )
    assert resp.status_code == 201, resp.text

    url = f"/v1/submissions/{target['id']}/reviewer-suggestions"
    assert (await client.get(url, headers=alice.headers)).status_code == 403
    body = (await client.get(url, headers=maintainer.headers)).json()
    ranked = [(s["reviewer"]["name"], s["score"], s["open_assignments"]) for s in body["items"]]
    # keywords: toy (2), sgd (1), baseline (1) → total 4
    assert ranked == [("rita", 0.75, 0), ("dave", 0.666667, 1), ("ravi", 0.25, 0)]
    assert body["items"][0]["matched"] == ["sgd", "toy"]
    names = {s["reviewer"]["name"] for s in body["items"]}
    assert not names & {"cora", "nina", "moe", "alice"}  # co-author, author, member, owner

    for who, why in [("cora", "shares submission"), ("nina", "an author")]:
        refused = await client.post(
            f"/v1/submissions/{target['id']}/assignments",
            headers=maintainer.headers,
            json={"reviewer": who},
        )
        assert refused.status_code == 409, refused.text
        assert why in refused.json()["detail"]


async def test_assign_queue_decline_and_reassign(
    app: FastAPI,
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    maintainer: Account,
    rita: Account,
) -> None:
    sub = await submit(client, alice)
    url = f"/v1/submissions/{sub['id']}/assignments"
    assert (
        await client.post(url, headers=alice.headers, json={"reviewer": "rita"})
    ).status_code == 403
    not_reviewer = await client.post(url, headers=maintainer.headers, json={"reviewer": "bob"})
    assert not_reviewer.status_code == 422
    unknown = await client.post(url, headers=maintainer.headers, json={"reviewer": "nobody"})
    assert unknown.status_code == 422
    created = await client.post(
        url, headers=maintainer.headers, json={"reviewer": "rita", "note": "method section"}
    )
    assert created.status_code == 201, created.text
    assignment = created.json()
    assert assignment["status"] == "open"
    assert assignment["assigned_by"] == "maya"
    again = await client.post(url, headers=maintainer.headers, json={"reviewer": "rita"})
    assert again.status_code == 409

    queue = (await client.get("/v1/me/assignments", headers=rita.headers)).json()
    assert [a["submission_id"] for a in queue["items"]] == [sub["id"]]
    assert queue["items"][0]["submission_title"] == "Plain SGD on toy"

    decline_url = f"/v1/assignments/{assignment['id']}/decline"
    stolen = await client.post(decline_url, headers=bob.headers, json={"reason": "not mine"})
    assert stolen.status_code == 404
    declined = await client.post(decline_url, headers=rita.headers, json={"reason": "no time"})
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined"
    assert declined.json()["decline_reason"] == "no time"
    twice = await client.post(decline_url, headers=rita.headers, json={"reason": "no time"})
    assert twice.status_code == 409
    assert (await client.get("/v1/me/assignments", headers=rita.headers)).json()["items"] == []
    gone = await client.get(
        "/v1/me/assignments", headers=rita.headers, params={"status": "declined"}
    )
    assert gone.json()["pagination"]["total"] == 1
    listed = await client.get(url, headers=maintainer.headers)
    assert listed.json()["items"][0]["status"] == "declined"

    reopened = await client.post(url, headers=maintainer.headers, json={"reviewer": "rita"})
    assert reopened.status_code == 201
    assert reopened.json()["id"] == assignment["id"]
    assert reopened.json()["status"] == "open"
    assert reopened.json()["decline_reason"] is None
    async with app.state.db.session() as s:
        actions = (await s.execute(select(AuditEvent.action).order_by(AuditEvent.id))).scalars()
        assert [a for a in actions if a.startswith("review.")] == [
            "review.assign",
            "review.decline",
            "review.assign",
        ]
