"""The community pages over HTTP (no browser): reviews and the discussion on a submission page,
the challenge pages, the contributors ranking and a profile's replications and reviews. Numbers
are checked against what the API answers for the same objects."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.scoring.explain import decimals_for
from app.web.templating import number, percent
from tests.conftest import Account
from tests.helpers import targz, toy_files, upload
from tests.jobs.test_queue import WorkerApi
from tests.leaderboard.boardkit import scored, spread
from tests.reviews.kit import make_user
from tests.web.communitykit import attempts, comment, open_challenge, page, review
from tests.web.htmltree import parse


@pytest.fixture
def worker(client: httpx.AsyncClient, worker_token: str) -> WorkerApi:
    return WorkerApi(client, worker_token)


@pytest.fixture
async def rita(app: FastAPI) -> Account:
    return await make_user(app, "rita", "reviewer", "Rita Reviewer")


@pytest.fixture
async def carol(app: FastAPI) -> Account:
    return await make_user(app, "carol")


@pytest.fixture
async def momentum(client: httpx.AsyncClient, worker: WorkerApi, alice: Account) -> int:
    """Alice's scored submission."""
    sub = await scored(client, worker, alice, fresh=spread(2.0), title="Momentum on toy")
    return int(sub["id"])


# ------------------------------------------------------------------------------ submission page


async def test_reviews_show_scores_recommendation_version_and_corrections_beside_quality(
    client: httpx.AsyncClient, maintainer: Account, rita: Account, momentum: int
) -> None:
    first = await review(client, maintainer, rita, momentum, (5, 3, 4, 2), summary="Solid <b>.")
    fixed = await review(
        client,
        maintainer,
        rita,
        momentum,
        (4, 4, 4, 4),
        corrects=first["id"],
        recommendation="endorse",
    )
    doc = await page(client, f"/submissions/{momentum}")
    old, new = doc.by_id(f"review-{first['id']}"), doc.by_id(f"review-{fixed['id']}")
    assert "Rita Reviewer" in old.text()
    assert "v1" in old.text()
    scores = {
        r.attrs["data-criterion"]: r.text()
        for r in old.find_all("tr")
        if "data-criterion" in r.attrs
    }
    assert scores["rigor"] == "statistical rigor 3 / 5 rigor comment by rita"
    assert scores["significance"].startswith("significance 2 / 5")
    assert [e.text() for e in old.find_all(cls="rec")] == ["revise"]
    assert [e.text() for e in new.find_all(cls="rec")] == ["endorse"]
    assert "Solid <b>." in old.text()  # the summary is text, escaped
    assert f"corrected by review {fixed['id']}" in old.text()
    assert f"corrects review {first['id']}" in new.text()
    assert {th.attrs.get("scope") for th in old.find_all("thead")[0].find_all("th")} == {"col"}

    api = (await client.get(f"/v1/submissions/{momentum}/reviews/summary")).json()
    side = doc.by_id("side-reviews").text()
    assert f"{api['latest']['overall']:.2f} / 5 from 1 review" in side  # through the correction
    assert "endorse 1 · revise 0 · reject 0" in side
    quality = doc.by_id("side-quality").text()
    assert f"{api['quality']:.1f} / 100" in quality
    assert "never enter" in quality
    assert doc.by_id("side-quality").parent is doc.by_id("side-reviews").parent  # side by side
    assert f"Quality score: {api['quality']:.1f} / 100" in doc.text()  # the score itself unchanged


async def test_drafts_stay_off_the_page(
    client: httpx.AsyncClient, maintainer: Account, rita: Account, momentum: int
) -> None:
    await review(client, maintainer, rita, momentum, (1, 1, 1, 1), publish=False, summary="DRAFT")
    doc = await page(client, f"/submissions/{momentum}")
    assert "DRAFT" not in doc.text()
    assert "No published reviews yet" in doc.by_id("reviews").text()


async def test_discussion_nests_replies_and_marks_authors_edits_and_versions(
    client: httpx.AsyncClient, alice: Account, bob: Account, momentum: int
) -> None:
    first = await comment(client, bob, momentum, "Which **learning rate**?")
    reply = await comment(client, alice, momentum, "0.1, as in the manifest", parent=first)
    deeper = await comment(client, bob, momentum, "Thanks", parent=reply)
    edited = await client.patch(
        f"/v1/comments/{deeper}", headers=bob.headers, json={"body": "Thanks, clear now"}
    )
    assert edited.status_code == 200
    v2 = await client.post(
        f"/v1/submissions/{momentum}/versions", headers=alice.headers, **upload(targz(toy_files()))
    )
    assert v2.status_code == 202
    later = await comment(client, bob, momentum, "About the new version")

    doc = await page(client, f"/submissions/{momentum}")
    top, answer, last = (doc.by_id(f"comment-{i}") for i in (first, reply, deeper))
    assert top in answer.ancestors()
    assert answer in last.ancestors()
    assert answer.parent is not None
    assert answer.parent.tag == "ol"
    assert answer.parent.parent is top
    newer = doc.by_id(f"comment-{later}").parent
    assert newer is not None
    assert newer.classes == {"thread"}  # a thread of its own, not a reply
    assert "<strong>learning rate</strong>" not in top.text()  # rendered, not shown as markup
    assert top.find_all("strong")[0].text() == "learning rate"
    own = answer.find_all("article")[0]
    assert [f.text() for f in own.find_all(cls="author")] == ["author"]
    assert top.find_all("article")[0].find_all(cls="author") == []
    assert "edited" in last.find_all("article")[0].text()
    assert "edited" not in top.find_all("article")[0].text()
    assert "on v1" in top.find_all("article")[0].text()
    assert "on v2" in doc.by_id(f"comment-{later}").text()
    assert "Thanks, clear now" in last.text()


async def test_a_script_in_a_comment_is_inert_on_the_page(
    client: httpx.AsyncClient, bob: Account, momentum: int
) -> None:
    cid = await comment(client, bob, momentum, "<script>alert(1)</script> [x](javascript:alert(1))")
    html = (await client.get(f"/submissions/{momentum}")).text
    assert "<script" not in html.lower()
    assert 'href="javascript' not in html.lower()
    body = parse(html).by_id(f"comment-{cid}").find_all(cls="comment-body")[0]
    assert "<script>alert(1)</script>" in body.text()  # shown as text (escaped in the HTML)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_a_hidden_comment_shows_its_reason_and_its_body_only_to_maintainers(
    client: httpx.AsyncClient, alice: Account, bob: Account, maintainer: Account, momentum: int
) -> None:
    spam = await comment(client, bob, momentum, "Buy my course at spam.example")
    answer = await comment(client, alice, momentum, "No thanks", parent=spam)
    hidden = await client.post(
        f"/v1/comments/{spam}/hide", headers=maintainer.headers, json={"reason": "off-topic"}
    )
    assert hidden.status_code == 200
    for headers in ({}, bob.headers, alice.headers):
        html = (await client.get(f"/submissions/{momentum}", headers=headers)).text
        assert "Buy my course" not in html
        doc = parse(html)
        node = doc.by_id(f"comment-{spam}")
        assert "hidden by a maintainer: off-topic" in node.text()
        assert node.find_all("article")[0].find_all(cls="comment-body") == []
        assert node in doc.by_id(f"comment-{answer}").ancestors()  # the thread stays
    seen = await page(client, f"/submissions/{momentum}", maintainer.headers)
    node = seen.by_id(f"comment-{spam}")
    assert "hidden by a maintainer: off-topic" in node.text()
    assert "Buy my course" in node.text()
    assert "shown to maintainers only" in node.text()


async def test_the_discussion_pages_threads_like_the_api(
    client: httpx.AsyncClient, bob: Account, momentum: int
) -> None:
    ids = [await comment(client, bob, momentum, f"Thread {n}") for n in range(3)]
    api = (await client.get(f"/v1/submissions/{momentum}/comments", params={"limit": 2})).json()
    html = (await client.get(f"/submissions/{momentum}?limit=2")).text
    doc = parse(html)
    shown = [int(li.attrs["id"].split("-")[1]) for li in doc.find_all("li", cls="comment")]
    assert shown == [c["id"] for c in api["items"]] == ids[:2]
    assert f'href="/submissions/{momentum}?limit=2&amp;offset=2#discussion" rel="next"' in html
    rest = await page(client, f"/submissions/{momentum}?limit=2&offset=2")
    assert [li.attrs["id"] for li in rest.find_all("li", cls="comment")] == [f"comment-{ids[2]}"]
    assert "3 threads" in rest.by_id("discussion").text()


# ------------------------------------------------------------------------------- challenges


async def test_challenge_page_shows_three_attempts_the_pooled_estimate_and_consensus(
    client: httpx.AsyncClient,
    worker: WorkerApi,
    maintainer: Account,
    bob: Account,
    carol: Account,
    rita: Account,
) -> None:
    cid = await open_challenge(client, maintainer)
    made = await attempts(client, worker, cid, [bob, carol, rita])
    api = (await client.get(f"/v1/challenges/{cid}")).json()
    doc = await page(client, f"/challenges/{cid}")
    assert doc.find_all("h1")[0].text() == api["title"]
    rows = doc.by_id("attempts").find_all("tbody")[0].find_all("tr")
    assert [r.attrs["data-attempt"] for r in rows] == [str(i) for i in made]
    for row, who in zip(rows, ("bob", "carol", "rita"), strict=True):
        links = [a.attrs["href"] for a in row.find_all("a")]
        assert links[:2] == [f"/submissions/{row.attrs['data-attempt']}", f"/users/{who}"]
        assert "v1" in row.text()
        assert "reproduced" in row.text()

    [pooled] = api["pooled"]
    row = doc.by_id("pooled").find_all("tr")[1]
    decimals = decimals_for(pooled["tolerance"]) + 1
    cells = [c.text() for c in row.find_all("td")]
    assert cells[0] == "3"
    assert cells[1] == number(pooled["estimate"], decimals) == "2.033"
    assert (
        cells[2]
        == f"{number(pooled['ci95_low'], decimals)} to {number(pooled['ci95_high'], decimals)}"
    )
    assert cells[4] == percent(pooled["i2"]) == "33%"
    assert float(row.find_all("td")[1].attrs["data-value"]) == pytest.approx(pooled["estimate"])
    assert doc.by_id("consensus-line").text() == api["consensus"]["line"]
    assert "the claim is reproduced" in doc.by_id("consensus-line").text()
    claim = doc.by_id("claim-h").parent
    assert claim is not None
    text = claim.text()
    assert "https://arxiv.org/abs/2501.00001" in text
    assert "0.1 (sd, n = 5)" in text
    assert "±0.5" in text
    assert "higher" in text
    assert "open" in doc.find_all("p", cls="lede")[0].text()


async def test_challenges_list_filters_like_the_api(
    client: httpx.AsyncClient, maintainer: Account
) -> None:
    sgd = await open_challenge(client, maintainer, title="Plain SGD at 2.0")
    adam = await open_challenge(
        client, maintainer, title="Adam at 3.0", metrics={"score": {"mean": 3.0}}
    )

    async def listed(query: str) -> list[str]:
        doc = await page(client, f"/challenges{query}")
        return [
            r.attrs["data-challenge"] for r in doc.find_all("tr") if "data-challenge" in r.attrs
        ]

    assert await listed("") == [str(adam), str(sgd)]
    assert await listed("?q=adam") == [str(adam)]
    assert await listed("?status=closed") == []
    assert await listed("?status=open&benchmark=toy&q=") == [str(adam), str(sgd)]
    assert await listed("?benchmark=toy-gpu") == []
    bad = (await client.get("/challenges?status=sideways")).text
    assert "unknown status" in bad
    assert (await client.get("/challenges/999")).status_code == 404
    nav = (await page(client, "/")).find_all("nav")[0]
    assert {"/challenges", "/contributors"} <= {a.attrs["href"] for a in nav.find_all("a")}


# ------------------------------------------------------------------ contributors and profiles


async def test_contributors_ranks_authors_replicators_and_reviewers(
    client: httpx.AsyncClient,
    worker: WorkerApi,
    alice: Account,
    bob: Account,
    maintainer: Account,
    rita: Account,
    momentum: int,
) -> None:
    await scored(client, worker, alice, fresh=spread(2.0), title="Second", name="second")
    await review(client, maintainer, rita, momentum, (4, 4, 4, 4))
    await attempts(client, worker, await open_challenge(client, maintainer), [bob])

    async def ranked(query: str = "") -> list[tuple[str, str, str]]:
        doc = await page(client, f"/contributors{query}")
        rows = doc.by_id("contributors").find_all("tbody")[0].find_all("tr")
        return [
            (r.attrs["data-user"], r.find_all("td")[0].text(), r.find_all("td")[1].text())
            for r in rows
        ]

    assert await ranked() == [("alice", "1", "2"), ("bob", "2", "1"), ("rita", "2", "1")]
    api = (await client.get("/v1/contributors")).json()["items"]
    assert [(c["user"]["name"], c["rank"]) for c in api] == [("alice", 1), ("bob", 2), ("rita", 2)]
    assert [u for u, _r, _p in await ranked("?kind=reviewers")] == ["rita"]
    assert [u for u, _r, _p in await ranked("?kind=replicators")] == ["bob"]
    assert [u for u, _r, _p in await ranked("?kind=authors")] == ["alice"]
    assert (
        'aria-current="page">Reviewers' in (await client.get("/contributors?kind=reviewers")).text
    )
    assert "unknown ranking" in (await client.get("/contributors?kind=loudest")).text


async def test_profile_counts_reviews_and_attempts_with_links(
    client: httpx.AsyncClient,
    worker: WorkerApi,
    maintainer: Account,
    bob: Account,
    rita: Account,
    momentum: int,
) -> None:
    written = await review(
        client, maintainer, rita, momentum, (5, 5, 4, 4), recommendation="endorse"
    )
    cid = await open_challenge(client, maintainer)
    [mine, _bobs] = await attempts(client, worker, cid, [rita, bob])
    api = (await client.get("/v1/users/rita/contributions")).json()["contributions"]
    doc = await page(client, "/users/rita")
    facts = doc.by_id("contributions").text()
    assert f"Claims reproduced {api['claims_reproduced']} " in facts
    assert api["claims_reproduced"] == 1
    assert f"Attempts contributed {api['attempts_contributed']} (1 judged)" in facts
    assert f"Reviews published {api['reviews_published']} " in facts
    assert api["reviews_published"] == 1
    reviews = doc.by_id("user-reviews")
    assert [a.attrs["href"] for a in reviews.find_all("a")] == [
        f"/submissions/{momentum}#review-{written['id']}"
    ]
    assert "endorse" in reviews.text()
    assert "4.50 / 5" in reviews.text()
    assert "v1" in reviews.text()
    tried = doc.by_id("user-attempts")
    hrefs = [a.attrs["href"] for a in tried.find_all("a")]
    assert hrefs == [f"/submissions/{mine}", f"/challenges/{cid}"]
    assert "reproduced" in tried.text()
    assert "Replications and reviews" in doc.text()
    attempt_page = await page(client, f"/submissions/{mine}")
    assert f"/challenges/{cid}" in [a.attrs.get("href") for a in attempt_page.find_all("a")]
