"""The pages in headless Chromium against a live server with scored submissions.

Screenshots go to ``test-artifacts/`` (kept by CI as artifacts, ignored by git).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import LiveBoard, LiveCommunity, shot_name

pytestmark = pytest.mark.browser


def _titles(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#leaderboard tbody th[scope=row]").all_inner_texts()]


def test_benchmark_page_ranks_rows_and_sorting_by_a_column_reorders_them(
    browser: Any, live_board: LiveBoard, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{live_board.url}/benchmarks/toy")
        best_first = sorted(live_board.submissions, key=lambda s: -s.reproduced)
        assert _titles(page) == [s.title for s in best_first]
        ranks = page.locator("#leaderboard tbody tr td:first-child").all_inner_texts()
        assert ranks == ["1", "2", "3"]
        assert page.locator("th[data-column=rank]").get_attribute("aria-sort") == "ascending"
        assert page.locator("#leaderboard tbody .verdict").first.inner_text() == "exceeded"
        chart = page.locator("figure img").first
        chart.scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=chart.element_handle()
        )
        page.screenshot(path=str(artifacts / shot_name(request, "ranked")), full_page=True)

        # Quality sorts best first on the first click, then flips on the second.
        page.locator("th[data-column=quality] a").click()
        page.wait_for_url("**sort=-quality**")
        qualities = [
            float(q)
            for q in page.locator("#leaderboard tbody tr td:nth-child(11)").all_inner_texts()
        ]
        assert qualities == sorted(qualities, reverse=True)
        assert page.locator("th[data-column=quality]").get_attribute("aria-sort") == "descending"

        page.locator("th[data-column=title] a").click()
        page.wait_for_url("**sort=title**")
        assert _titles(page) == sorted(s.title for s in live_board.submissions)
        page.locator("th[data-column=title] a").click()
        page.wait_for_url("**sort=-title**")
        assert _titles(page) == sorted((s.title for s in live_board.submissions), reverse=True)
        page.screenshot(path=str(artifacts / shot_name(request, "by-title")), full_page=True)

        # The filter form is plain HTML: choosing a verdict narrows the rows.
        page.select_option("#f-verdict", "reproduced")
        page.get_by_role("button", name="Apply filters").click()
        page.wait_for_url("**verdict=reproduced**")
        assert _titles(page) == ["Momentum on toy"]
    finally:
        page.close()


def test_submission_page_shows_the_plot_the_verdict_and_its_explanation(
    browser: Any, live_board: LiveBoard, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        first = live_board.submissions[0]
        page.goto(f"{live_board.url}/benchmarks/toy")
        page.get_by_role("link", name=first.title).click()
        page.wait_for_url(f"**/submissions/{first.id}")
        assert page.locator("h1").inner_text() == first.title
        verdict = page.locator("#verdict-h ~ p .verdict.big")
        assert verdict.inner_text() == "reproduced"
        explanation = page.locator("#explanation").inner_text()
        assert "reproduced" in explanation
        assert "margin" in explanation or "δ" in explanation
        plot = page.locator("img.seed-plot").first
        plot.scroll_into_view_if_needed()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=plot.element_handle()
        )
        assert plot.get_attribute("alt").startswith("Per-seed values of score")
        assert page.locator("#versions tbody tr").count() == 1
        assert "sha256:abab" in page.locator("#prov-h ~ .table-wrap").inner_text()
        page.screenshot(path=str(artifacts / shot_name(request, "submission")), full_page=True)
    finally:
        page.close()


def test_pages_work_without_javascript_on_a_phone(
    browser: Any, live_board: LiveBoard, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    page = context.new_page()
    try:
        for path, what in (
            ("/", "home"),
            ("/benchmarks/toy", "benchmark"),
            ("/users/alice", "user"),
            ("/challenges", "challenges"),
            ("/contributors", "contributors"),
        ):
            resp = page.goto(f"{live_board.url}{path}")
            assert resp is not None
            assert resp.status == 200
            assert page.locator("a.skip-link").get_attribute("href") == "#main"
            # Nothing wider than the screen except inside the scrollable table regions.
            overflow = page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= 390 + 1, f"{path} is {overflow}px wide on a 390px screen"
            page.screenshot(path=str(artifacts / shot_name(request, what)), full_page=True)
        page.goto(f"{live_board.url}/benchmarks/toy")
        page.locator("th[data-column=quality] a").click()
        assert "sort=-quality" in page.url
    finally:
        context.close()


def test_submission_page_shows_the_review_and_the_reply_nested_in_its_parent(
    browser: Any, live_community: LiveCommunity, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{live_community.url}/submissions/{live_community.submission_id}")
        review = page.locator(f"#review-{live_community.review_id}")
        review.scroll_into_view_if_needed()
        assert review.is_visible()
        assert "endorse" in review.locator(".rec").inner_text()
        assert review.locator("tbody tr").count() == 4
        assert "4.00 / 5" in page.locator("#side-reviews").inner_text()
        side = page.locator("#side-reviews").bounding_box()
        quality = page.locator("#side-quality").bounding_box()
        assert side["x"] > quality["x"]  # beside the quality score, not below it
        assert abs(side["y"] - quality["y"]) < 1

        first, reply, deeper = live_community.thread
        parent = page.locator(f"#comment-{first}")
        nested = parent.locator(f"#comment-{reply}")
        assert nested.count() == 1  # the reply is inside its parent's element
        assert parent.locator(f"#comment-{reply} #comment-{deeper}").count() == 1
        nested.scroll_into_view_if_needed()
        assert nested.is_visible()
        outer = parent.locator("> article").bounding_box()
        inner = nested.locator("> article").bounding_box()
        assert inner["x"] > outer["x"] + 10  # indented
        assert inner["y"] > outer["y"]  # below what it answers
        assert nested.locator(".flag.author").inner_text() == "author"
        assert parent.locator("> article strong").inner_text() == "seed"
        page.locator("#discussion").screenshot(
            path=str(artifacts / shot_name(request, "discussion"))
        )
        page.screenshot(path=str(artifacts / shot_name(request, "submission")), full_page=True)
    finally:
        page.close()


def test_challenge_page_shows_the_attempts_and_the_pooled_estimate(
    browser: Any, live_community: LiveCommunity, artifacts: Path, request: pytest.FixtureRequest
) -> None:
    api = live_community.board.reprise.http.get(
        f"/v1/challenges/{live_community.challenge_id}"
    ).json()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(f"{live_community.url}/challenges")
        page.get_by_role("link", name=api["title"]).click()
        page.wait_for_url(f"**/challenges/{live_community.challenge_id}")
        rows = page.locator("#attempts tbody tr")
        assert rows.count() == 3
        assert rows.first.is_visible()
        ids = [int(i) for i in rows.evaluate_all("rs => rs.map(r => r.dataset.attempt)")]
        assert ids == live_community.attempts
        assert rows.locator(".verdict").all_inner_texts() == ["reproduced"] * 3
        pooled = page.locator("#pooled tbody tr").first
        pooled.scroll_into_view_if_needed()
        assert pooled.is_visible()
        cells = pooled.locator("td").all_inner_texts()
        assert cells[1] == f"{api['pooled'][0]['estimate']:.3f}"
        assert cells[4] == f"{100 * api['pooled'][0]['i2']:.0f}%"
        assert page.locator("#consensus-line").inner_text() == api["consensus"]["line"]
        page.screenshot(path=str(artifacts / shot_name(request, "challenge")), full_page=True)
        rows.first.locator("a").first.click()
        page.wait_for_url(f"**/submissions/{live_community.attempts[0]}")
        assert page.get_by_role("link", name=f"challenge {live_community.challenge_id}").count()
    finally:
        page.close()
