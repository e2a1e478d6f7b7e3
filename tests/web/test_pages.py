"""The server-rendered pages over HTTP (no browser): content, structure, access and the cached
charts. The browser tests (test_browser.py) cover ordering, sorting and the plot in Chromium."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.submissions.models import SubmissionVersion
from app.verdicts.models import Verdict
from app.verdicts.service import rescore
from app.web.markdown import render as markdown
from tests.conftest import Account
from tests.jobs.test_queue import WorkerApi
from tests.leaderboard.boardkit import scored, spread


@pytest.fixture
def worker(client: httpx.AsyncClient, worker_token: str) -> WorkerApi:
    return WorkerApi(client, worker_token)


@pytest.fixture
async def two(
    client: httpx.AsyncClient, worker: WorkerApi, alice: Account, bob: Account
) -> list[dict[str, Any]]:
    return [
        await scored(client, worker, alice, fresh=spread(2.0), title="Momentum on toy"),
        await scored(client, worker, bob, fresh=spread(3.0), title="Adam on toy", name="adam"),
    ]


def _plot_urls(html: str) -> list[str]:
    return re.findall(r'src="(/plots/verdicts/[^"]+)"', html)


async def test_home_lists_benchmarks_recent_verdicts_and_the_overall_rate(
    client: httpx.AsyncClient, two: list[dict[str, Any]]
) -> None:
    resp = await client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert '<a class="skip-link" href="#main">' in html
    assert '<main id="main"' in html
    assert "<caption" in html
    assert '<th scope="col">Benchmark</th>' in html
    assert 'href="/benchmarks/toy"' in html
    assert "100%" in html  # both claims held: one reproduced, one exceeded
    assert html.index("Adam on toy") < html.index("Momentum on toy")  # newest verdict first


async def test_benchmark_page_has_the_board_filters_chart_and_description(
    client: httpx.AsyncClient, two: list[dict[str, Any]]
) -> None:
    html = (await client.get("/benchmarks/toy")).text
    assert html.index("Adam on toy") < html.index("Momentum on toy")
    assert 'aria-sort="ascending"' in html  # rank, the default order
    assert 'href="/benchmarks/toy?sort=-quality"' in html
    for field in ("f-verdict", "f-quality", "f-tag", "f-author"):
        assert f'<label for="{field}">' in html
        assert f'id="{field}"' in html
    assert '<th scope="row"><a href="/submissions/' in html
    assert "fit a 5-vector with noisy gradients" in html
    assert re.search(r'<img src="/plots/benchmarks/toy/1/score.svg\?g=\d+"', html)
    csv_link = re.search(r'href="(/v1/benchmarks/toy/leaderboard\?[^"]+)"', html)
    assert csv_link is not None
    csv = await client.get(csv_link.group(1).replace("&amp;", "&"))
    assert csv.status_code == 200
    assert csv.headers["content-type"].startswith("text/csv")
    filtered = (await client.get("/benchmarks/toy?verdict=exceeded&min_quality=&tag=&author=")).text
    assert "Adam on toy" in filtered
    assert "Momentum on toy" not in filtered
    bad = await client.get("/benchmarks/toy?min_quality=lots&sort=nonsense")
    assert bad.status_code == 200
    assert "minimum quality must be a number" in bad.text
    assert "cannot sort by" in bad.text


async def test_board_chart_is_rendered_once_per_board_generation(
    app: FastAPI,
    client: httpx.AsyncClient,
    worker: WorkerApi,
    alice: Account,
    two: list[dict[str, Any]],
) -> None:
    first = await client.get("/plots/benchmarks/toy/1/score.svg")
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/svg+xml"
    assert first.content.startswith(b"<?xml")
    again = await client.get("/plots/benchmarks/toy/1/score.svg")
    assert again.content == first.content
    assert app.state.plot_cache.renders == 1
    await scored(client, worker, alice, fresh=spread(1.0), title="Third on toy", name="third")
    third = await client.get("/plots/benchmarks/toy/1/score.svg")
    assert third.content != first.content
    assert app.state.plot_cache.renders == 2
    charts = list((app.state.settings.data_dir / "cache" / "plots").glob("board-*/*.svg"))
    assert len(charts) == 1  # the older generation was pruned
    assert (await client.get("/plots/benchmarks/toy/1/loss.svg")).status_code == 404


async def test_submission_page_shows_claim_panels_verdict_quality_provenance_jobs_versions(
    app: FastAPI, client: httpx.AsyncClient, two: list[dict[str, Any]]
) -> None:
    sid = two[0]["id"]
    html = (await client.get(f"/submissions/{sid}")).text
    assert "<h1>Momentum on toy</h1>" in html
    assert 'class="verdict verdict-reproduced big"' in html
    assert 'id="explanation"' in html
    assert "Claim verdict: reproduced" in html
    assert "Quality score:" in html
    assert 'class="checklist"' in html
    assert "Provenance" in html
    assert "Runs of version 1" in html
    assert 'id="versions"' in html
    assert "on the board" in html
    urls = _plot_urls(html)
    assert len(urls) == 1  # one claimed metric: score
    plot = await client.get(urls[0])
    assert plot.status_code == 200
    assert plot.headers["content-type"] == "image/svg+xml"
    assert b"score (higher is better)" in plot.content
    assert (await client.get(urls[0])).content == plot.content
    assert app.state.plot_cache.renders == 1
    async with app.state.db.session() as session:
        verdict = (
            await session.execute(select(Verdict).where(Verdict.submission_id == sid))
        ).scalar_one()
    files = list((app.state.settings.data_dir / "cache" / "plots" / "verdicts").glob("*.svg"))
    assert [f.name.startswith(f"v-{verdict.id}-{verdict.scoring_version}-") for f in files] == [
        True
    ]


async def test_a_rescored_verdict_gets_a_new_plot(
    app: FastAPI, client: httpx.AsyncClient, two: list[dict[str, Any]]
) -> None:
    sid = two[0]["id"]
    before = _plot_urls((await client.get(f"/submissions/{sid}")).text)
    async with app.state.db.session(write=True) as session:
        version = (
            await session.execute(
                select(SubmissionVersion).where(SubmissionVersion.submission_id == sid)
            )
        ).scalar_one()
        version.lint_report = {**version.lint_report, "checks": []}
        await rescore(session, version, write=True)
    after = _plot_urls((await client.get(f"/submissions/{sid}")).text)
    assert before != after
    assert (await client.get(before[0])).status_code == 404  # that verdict row is gone
    assert (await client.get(after[0])).status_code == 200


async def test_withdrawn_submissions_are_404_for_others_but_not_their_owner(
    client: httpx.AsyncClient, two: list[dict[str, Any]], alice: Account, bob: Account
) -> None:
    sid = two[0]["id"]
    plot = _plot_urls((await client.get(f"/submissions/{sid}")).text)[0]
    assert (
        await client.post(f"/v1/submissions/{sid}/withdraw", headers=alice.headers)
    ).status_code == 200
    anonymous = await client.get(f"/submissions/{sid}")
    assert anonymous.status_code == 404
    assert anonymous.headers["content-type"].startswith("text/html")
    assert (await client.get(f"/submissions/{sid}", headers=bob.headers)).status_code == 404
    own = await client.get(f"/submissions/{sid}", headers=alice.headers)
    assert own.status_code == 200
    assert "was withdrawn" in own.text
    assert (await client.get(plot)).status_code == 404
    assert (await client.get(plot, headers=alice.headers)).status_code == 200
    assert "Momentum on toy" not in (await client.get("/benchmarks/toy")).text
    assert "Momentum on toy" not in (await client.get("/users/alice")).text
    assert "Momentum on toy" in (await client.get("/users/alice", headers=alice.headers)).text


async def test_a_version_in_progress_points_to_the_standing_one(
    client: httpx.AsyncClient, two: list[dict[str, Any]], alice: Account
) -> None:
    from tests.leaderboard.boardkit import new_version

    sid = two[0]["id"]
    await new_version(client, alice, sid, title="Momentum, second try")
    html = (await client.get(f"/submissions/{sid}")).text
    assert "Version 2 is queued" in html
    assert 'The leaderboard shows <a href="?version=1">version 1</a>' in html
    old = (await client.get(f"/submissions/{sid}?version=1")).text
    assert "Claim verdict: reproduced" in old
    assert (await client.get(f"/submissions/{sid}?version=7")).status_code == 404


async def test_user_page_has_submissions_rate_and_a_slot_for_reviews(
    client: httpx.AsyncClient, two: list[dict[str, Any]]
) -> None:
    html = (await client.get("/users/alice")).text
    assert "Momentum on toy" in html
    assert "Adam on toy" not in html
    assert "100%" in html
    assert "95% interval" in html
    assert 'data-slot="community-review"' in html
    assert "Replications and reviews" in html
    assert (await client.get("/users/nobody")).status_code == 404


async def test_user_text_is_escaped_and_markdown_is_sanitised(
    client: httpx.AsyncClient, worker: WorkerApi, alice: Account
) -> None:
    await scored(client, worker, alice, fresh=spread(2.0), title="<script>alert(1)</script> & co")
    for url in ("/", "/benchmarks/toy", "/submissions/1", "/users/alice"):
        html = (await client.get(url)).text
        assert "<script>alert(1)" not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html, url
    unsafe = "**ok** <img src=x onerror=alert(1)> [x](javascript:alert(1)) <script>x</script>"
    html = markdown(unsafe)
    assert "<strong>ok</strong>" in html
    assert "<img" not in html
    assert "<script" not in html
    assert 'href="javascript' not in html


async def test_missing_pages_are_html_404s_and_the_stylesheet_is_served(
    client: httpx.AsyncClient,
) -> None:
    pages = ("/benchmarks/nope", "/benchmarks/toy?version=4", "/submissions/12345")
    for url in (*pages, "/users/nobody", "/challenges/999"):
        resp = await client.get(url)
        assert resp.status_code == 404, url
        assert "<h1>Not found</h1>" in resp.text
    css = await client.get("/static/reprise.css")
    assert css.headers["content-type"].startswith("text/css")
    assert ".skip-link" in css.text
    assert (await client.get("/static/..%2Fpages.py")).status_code == 404
    missing = await client.get("/static/missing.css")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"  # not a page
