"""Structured reviews: assigned reviewers only, drafts, publication, immutability, corrections,
version labels, the mean scores beside the quality score, and the reviewer's profile."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.jobs.test_queue import WorkerApi
from tests.reviews.kit import plan, run_all, submit


def _review(score: int = 4, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        name: {"score": score, "comment": f"{name} is fine"}
        for name in ("clarity", "rigor", "documentation", "significance")
    }
    body["recommendation"] = "endorse"
    body.update(extra)
    return body


@pytest.fixture
async def assigned(
    client: httpx.AsyncClient, alice: Account, maintainer: Account, rita: Account
) -> dict[str, Any]:
    sub = await submit(client, alice)
    resp = await client.post(
        f"/v1/submissions/{sub['id']}/assignments",
        headers=maintainer.headers,
        json={"reviewer": "rita"},
    )
    assert resp.status_code == 201, resp.text
    return sub


async def test_only_an_assigned_reviewer_may_review(
    client: httpx.AsyncClient,
    assigned: dict[str, Any],
    bob: Account,
    ravi: Account,
    rita: Account,
    maintainer: Account,
) -> None:
    url = f"/v1/submissions/{assigned['id']}/reviews"
    for who in (ravi, bob, maintainer):
        resp = await client.post(url, headers=who.headers, json=_review())
        assert resp.status_code == 403, (who.name, resp.text)
        assert "not assigned" in resp.json()["detail"]
    assert (await client.post(url, json=_review())).status_code == 401
    bad = await client.post(url, headers=rita.headers, json=_review(score=6))
    assert bad.status_code == 422
    sneaky = await client.post(url, headers=rita.headers, json=_review(status="published"))
    assert sneaky.status_code == 422
    missing = _review()
    del missing["rigor"]["comment"]
    assert (await client.post(url, headers=rita.headers, json=missing)).status_code == 422
    assert (await client.post(url, headers=rita.headers, json=_review())).status_code == 201


async def test_draft_edit_publish_immutable_and_correction(
    client: httpx.AsyncClient,
    alice: Account,
    assigned: dict[str, Any],
    rita: Account,
) -> None:
    url = f"/v1/submissions/{assigned['id']}/reviews"
    draft = await client.post(url, headers=rita.headers, json=_review(score=2))
    assert draft.status_code == 201, draft.text
    review = draft.json()
    assert review["status"] == "draft"
    assert review["version"] == 1
    assert review["criteria"]["rigor"]["label"] == "statistical rigor"
    assert (await client.get(url)).json()["items"] == []  # drafts are private
    assert (await client.get(f"/v1/reviews/{review['id']}")).status_code == 404
    own = (await client.get(url, headers=rita.headers)).json()["items"]
    assert [r["id"] for r in own] == [review["id"]]
    second = await client.post(url, headers=rita.headers, json=_review())
    assert second.status_code == 409  # one draft per version: edit it

    stranger = await client.patch(
        f"/v1/reviews/{review['id']}", headers=alice.headers, json={"summary": "mine now"}
    )
    assert stranger.status_code == 404
    edited = await client.patch(
        f"/v1/reviews/{review['id']}",
        headers=rita.headers,
        json={"rigor": {"score": 3, "comment": "fine after all"}, "recommendation": "revise"},
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["criteria"]["rigor"] == {
        "label": "statistical rigor",
        "score": 3,
        "comment": "fine after all",
    }
    published = await client.post(f"/v1/reviews/{review['id']}/publish", headers=rita.headers)
    assert published.status_code == 200
    assert published.json()["status"] == "published"
    assert published.json()["published_at"] is not None
    public = (await client.get(url)).json()["items"]
    assert [(r["id"], r["recommendation"]) for r in public] == [(review["id"], "revise")]
    locked = await client.patch(
        f"/v1/reviews/{review['id']}", headers=rita.headers, json={"summary": "changed"}
    )
    assert locked.status_code == 409
    assert f"corrects={review['id']}" in locked.json()["detail"]
    again = await client.post(url, headers=rita.headers, json=_review())
    assert again.status_code == 409  # a second published review must be a correction

    queue = await client.get(
        "/v1/me/assignments", headers=rita.headers, params={"status": "completed"}
    )
    assert queue.json()["items"][0]["review_id"] == review["id"]

    correction = await client.post(
        url, headers=rita.headers, json=_review(score=5, corrects=review["id"], publish=True)
    )
    assert correction.status_code == 201, correction.text
    fixed = correction.json()
    assert fixed["status"] == "published"
    assert fixed["corrects"] == review["id"]
    old = (await client.get(f"/v1/reviews/{review['id']}")).json()
    assert old["corrected_by"] == fixed["id"]
    assert old["criteria"]["rigor"]["score"] == 3  # the original stays as it was

    summary = (await client.get(f"{url}/summary")).json()
    assert summary["latest"]["reviews"] == 1  # the corrected review counts through its correction
    assert summary["latest"]["criteria"] == {
        "clarity": 5.0,
        "rigor": 5.0,
        "documentation": 5.0,
        "significance": 5.0,
    }
    assert summary["latest"]["recommendations"] == {"endorse": 1, "revise": 0, "reject": 0}
    profile = (await client.get("/v1/users/rita/contributions")).json()
    assert profile["contributions"]["reviews_published"] == 1  # corrections are not counted
    assert profile["user"]["display_name"] == "Rita Reviewer"


async def test_reviews_of_earlier_versions_stay_labelled_and_summary_sits_beside_quality(
    client: httpx.AsyncClient,
    alice: Account,
    assigned: dict[str, Any],
    rita: Account,
    worker_token: str,
) -> None:
    url = f"/v1/submissions/{assigned['id']}/reviews"
    worker = WorkerApi(client, worker_token)
    await run_all(worker, {assigned["id"]: plan(assigned, [1.95, 2.0, 2.05])})
    first = await client.post(url, headers=rita.headers, json=_review(score=2, publish=True))
    assert first.status_code == 201
    v2 = await client.post(
        f"/v1/submissions/{assigned['id']}/versions",
        headers=alice.headers,
        files={"package": ("p.tar.gz", _package(), "application/octet-stream")},
    )
    assert v2.status_code == 202, v2.text
    second = await client.post(url, headers=rita.headers, json=_review(score=4, publish=True))
    assert second.status_code == 201, second.text
    items = (await client.get(url)).json()["items"]
    assert [(r["version"], r["is_latest_version"]) for r in items] == [(1, False), (2, True)]
    only_v1 = (await client.get(url, params={"version": 1})).json()["items"]
    assert [r["id"] for r in only_v1] == [first.json()["id"]]

    summary = (await client.get(f"{url}/summary")).json()
    assert summary["latest_version"] == 2
    assert summary["latest"]["overall"] == 4.0
    assert summary["all_versions"]["overall"] == 3.0
    assert [(v["version"], v["overall"]) for v in summary["by_version"]] == [(1, 2.0), (2, 4.0)]
    assert summary["quality"] is None  # version 2 is not scored yet
    await run_all(worker, {assigned["id"]: plan(v2.json(), [1.95, 2.0, 2.05])})
    summary = (await client.get(f"{url}/summary")).json()
    detail = (await client.get(f"/v1/submissions/{assigned['id']}")).json()
    assert summary["quality"] == detail["quality"] is not None
    assert "review" not in str(detail["version"]["verdict"]["quality"])  # not inside Q


def _package() -> bytes:
    from tests.helpers import targz, toy_files, toy_manifest

    return targz(toy_files(toy_manifest(hyperparameters="[hyperparameters]\nlr = 0.2\n")))
