"""Recognition: profile counts and a contributors ranking where replicating and reviewing
count as much as publishing."""

from __future__ import annotations

import datetime as dt

import httpx

from tests.conftest import Account
from tests.jobs.test_queue import WorkerApi
from tests.reviews.kit import plan, run_all, submit


async def test_counts_and_ranking(
    client: httpx.AsyncClient,
    alice: Account,
    bob: Account,
    maintainer: Account,
    rita: Account,
    worker_token: str,
) -> None:
    worker = WorkerApi(client, worker_token)
    first = await submit(client, alice)
    second = await submit(client, alice)
    gone = await submit(client, alice)
    challenge = await client.post(
        "/v1/challenges",
        headers=maintainer.headers,
        json={
            "title": "Replicate",
            "deadline": (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(),
            "submission_id": first["id"],
        },
    )
    attempt = await submit(client, bob, path=f"/v1/challenges/{challenge.json()['id']}/attempts")
    await run_all(
        worker,
        {
            first["id"]: plan(first, [1.95, 2.0, 2.05]),
            second["id"]: plan(second, [0.9, 1.0, 1.1]),  # not reproduced
            gone["id"]: plan(gone, [1.95, 2.0, 2.05]),
            attempt["id"]: plan(attempt, [1.95, 2.0, 2.05]),
        },
    )
    await client.post(f"/v1/submissions/{gone['id']}/withdraw", headers=alice.headers)
    await client.post(
        f"/v1/submissions/{first['id']}/assignments",
        headers=maintainer.headers,
        json={"reviewer": "rita"},
    )
    criterion = {"score": 5, "comment": "clear"}
    body = {k: criterion for k in ("clarity", "rigor", "documentation", "significance")} | {
        "recommendation": "endorse",
        "publish": True,
    }
    review = await client.post(
        f"/v1/submissions/{first['id']}/reviews", headers=rita.headers, json=body
    )
    await client.post(
        f"/v1/submissions/{first['id']}/reviews",
        headers=rita.headers,
        json=body | {"corrects": review.json()["id"]},
    )
    for text in ("one", "two"):
        await client.post(
            f"/v1/submissions/{first['id']}/comments", headers=bob.headers, json={"body": text}
        )

    alice_counts = (await client.get("/v1/users/alice/contributions")).json()["contributions"]
    assert alice_counts == {
        "authored": 2,
        "authored_reproduced": 1,
        "attempts_contributed": 0,
        "attempts_judged": 0,
        "claims_reproduced": 0,
        "reviews_published": 0,
        "comments": 0,
        "points": 2,
    }
    bob_counts = (await client.get("/v1/users/bob/contributions")).json()["contributions"]
    assert bob_counts["attempts_judged"] == 1
    assert bob_counts["claims_reproduced"] == 1
    assert bob_counts["comments"] == 2
    assert bob_counts["points"] == 1  # comments earn no points
    rita_profile = (await client.get("/v1/users/rita/contributions")).json()
    assert rita_profile["contributions"]["reviews_published"] == 1
    assert (await client.get("/v1/users/nobody/contributions")).status_code == 404

    ranking = (await client.get("/v1/contributors")).json()
    assert [
        (c["rank"], c["user"]["name"], c["contributions"]["points"]) for c in ranking["items"]
    ] == [
        (1, "alice", 2),
        (2, "bob", 1),
        (2, "rita", 1),
    ]
    for kind, names in [("authors", ["alice"]), ("replicators", ["bob"]), ("reviewers", ["rita"])]:
        listed = (await client.get("/v1/contributors", params={"kind": kind})).json()["items"]
        assert [c["user"]["name"] for c in listed] == names, kind
    page = (await client.get("/v1/contributors", params={"limit": 1, "offset": 1})).json()
    assert [c["user"]["name"] for c in page["items"]] == ["bob"]
    assert page["pagination"]["total"] == 3
