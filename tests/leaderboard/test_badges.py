"""README badges: the standing verdict in its colour, pending and withdrawn too, cacheable."""

from __future__ import annotations

import httpx
import pytest

from app.leaderboard.badges import LABEL_COLOUR, STATES, render
from tests.conftest import Account
from tests.jobs.test_queue import WorkerApi


@pytest.fixture
def worker(client: httpx.AsyncClient, worker_token: str) -> WorkerApi:
    return WorkerApi(client, worker_token)


def _luminance(colour: str) -> float:
    rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def test_badge_colours_give_white_text_aa_contrast_and_name_the_state() -> None:
    for state, (message, colour) in [*STATES.items(), ("label", ("Reprise", LABEL_COLOUR))]:
        assert (1.05 / (_luminance(colour) + 0.05)) >= 4.5, state
        if state != "label":
            svg = render(state).svg.decode()
            assert f">{message}</text>" in svg
            assert f'aria-label="Reprise: {message}"' in svg
    assert render("reproduced").etag != render("exceeded").etag
    assert render("reproduced").etag == render("reproduced").etag


async def test_badge_follows_the_submission_with_caching_headers(
    client: httpx.AsyncClient, worker: WorkerApi, alice: Account
) -> None:
    from tests.jobs.test_queue import submit

    pending = await submit(client, alice)
    resp = await client.get(f"/badges/submissions/{pending['id']}.svg")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/svg+xml"
    assert ">pending</text>" in resp.text
    while (lease := await worker.lease()) is not None:  # score it: reproduced
        assert (await worker.result(lease, metrics={"score": 2.0, "loss": 0.01})).status_code == 200
    resp = await client.get(f"/badges/submissions/{pending['id']}.svg")
    assert ">reproduced</text>" in resp.text
    assert resp.headers["cache-control"].startswith("public, max-age=")
    etag = resp.headers["etag"]
    again = await client.get(
        f"/badges/submissions/{pending['id']}.svg", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert (await client.get("/badges/submissions/999.svg")).status_code == 404
    await client.post(f"/v1/submissions/{pending['id']}/withdraw", headers=alice.headers)
    gone = await client.get(
        f"/badges/submissions/{pending['id']}.svg", headers={"If-None-Match": etag}
    )
    assert gone.status_code == 200
    assert ">withdrawn</text>" in gone.text
