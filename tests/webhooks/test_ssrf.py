"""Webhook targets on private, loopback or link-local addresses are refused (SSRF), by address
and by what a host name resolves to — at registration and again at delivery."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.core.config import Settings
from app.webhooks import ssrf
from app.webhooks.models import Webhook
from tests.conftest import Account

REFUSED_URLS = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://[::1]/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/hook",  # 169.254.169.254, mapped
    "http://[64:ff9b::a00:1]/hook",  # 10.0.0.1 through NAT64
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://224.0.0.1/hook",
    "http://localhost/hook",
    "http://localhost:9000/hook",
    "http://rebind.test/hook",  # resolves to loopback (see the fixture)
    "http://mixed.test/hook",  # one public and one private address
]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Names under .test resolve from this table; no query leaves the machine."""
    table = {
        "rebind.test": ["127.0.0.1"],
        "mixed.test": ["93.184.216.34", "10.1.2.3"],
        "public.test": ["93.184.216.34"],
    }
    real = ssrf.resolve

    async def resolve(host: str, port: int) -> list[str]:
        if host in table:
            return table[host]
        if host == "localhost":
            return await real(host, port)  # /etc/hosts, never the network
        raise ssrf.TargetRefused(f"the host {host!r} does not resolve (test)")

    monkeypatch.setattr(ssrf, "resolve", resolve)
    return table


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(ssrf.TargetRefused, match="webhooks may only target public addresses"):
        await ssrf.vet(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    ["ftp://93.184.216.34/x", "http://user:pw@93.184.216.34/x", "javascript:alert(1)", "http:///x"],
)
async def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ssrf.TargetRefused):
        await ssrf.vet(url, allow_private=True)


async def test_public_targets_pass_and_the_checked_address_is_pinned() -> None:
    target = await ssrf.vet("https://public.test:8443/hook?x=1", allow_private=False)
    assert target.address == "93.184.216.34"
    assert str(target.pinned_url) == "https://93.184.216.34:8443/hook?x=1"
    assert target.host == "public.test"
    literal = await ssrf.vet("http://[2606:4700::1111]/h", allow_private=False)
    assert str(literal.pinned_url) == "http://[2606:4700::1111]/h"
    loop = await ssrf.vet("http://127.0.0.1:9/h", allow_private=True)  # when the server allows
    assert loop.address == "127.0.0.1"


def test_blocked_reasons() -> None:
    def reason(a: str) -> str | None:
        return ssrf.blocked_reason(ipaddress.ip_address(a))

    assert reason("127.0.0.1") == "loopback"
    assert reason("::1") == "loopback"
    assert reason("10.1.1.1") == "private"
    assert reason("169.254.169.254") == "link-local"
    assert reason("::ffff:10.0.0.1") == "private"
    assert reason("93.184.216.34") is None
    assert reason("2606:4700::1111") is None


@pytest.fixture
def settings(database_url: str, tmp_path: Path, benchmarks_dir: Path) -> Settings:
    # The production default: no webhooks group, so private targets are refused.
    return Settings(
        environment="test",
        database_url=database_url,
        data_dir=tmp_path / "var",
        benchmarks_dir=benchmarks_dir,
        allow_unsandboxed=True,
        log_level="WARNING",
    )


async def test_the_api_refuses_private_targets_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, alice: Account
) -> None:
    for url in [
        "http://127.0.0.1/h",
        "http://[::1]/h",
        "http://10.0.0.1/h",
        "http://169.254.169.254/h",
        "http://localhost/h",
        "http://rebind.test/h",
    ]:
        resp = await client.post("/v1/me/webhooks", headers=alice.headers, json={"url": url})
        assert resp.status_code == 422, (url, resp.text)
        assert resp.json()["errors"][0]["loc"] == "url"
    async with app.state.db.session() as s:
        assert (await s.execute(select(func.count()).select_from(Webhook))).scalar_one() == 0
    ok = await client.post(
        "/v1/me/webhooks", headers=alice.headers, json={"url": "https://public.test/hook"}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["secret"].startswith("whsec_")
    assert ok.json()["events"] == [
        "challenge.attempt_judged",
        "comment.reply",
        "job.finished",
        "review.received",
        "verdict.published",
    ]
