"""The container health check: ``python -m app.ops.healthcheck`` (the image's HEALTHCHECK).

- An API container: ``GET /healthz`` answers 200 (``--url``, ``REPRISE_HEALTHCHECK_URL``,
  default ``http://127.0.0.1:8000/healthz``).
- A worker container — it has no HTTP endpoint — is recognised by ``REPRISE_WORKER_HEALTH_FILE``
  (the worker's own setting, so one variable tells both where to write and where to look): the
  file was rewritten within ``--max-age`` seconds (default 60; the worker writes every 5 s) and
  its ``status`` is ``ok``, ``starting`` or ``stopping``. ``--live`` also accepts ``unhealthy``
  (the worker runs but its Docker engine does not answer): a liveness probe that restarts the
  worker would not bring the engine back.

Standard library only, and nothing of the app is imported: it runs every few seconds.
Exit status 0 when healthy, 1 otherwise, with one line saying why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000/healthz"
READY = frozenset({"ok", "starting", "stopping"})
ALIVE = READY | {"unhealthy"}


def check_api(url: str, *, timeout_s: float = 4.0) -> tuple[bool, str]:
    """``url`` answers 200."""
    if not url.startswith(("http://", "https://")):
        return False, f"{url!r} is not an http(s) URL"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 - checked above
            status = int(resp.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        return False, f"{url}: {exc}"
    return status == 200, f"{url}: HTTP {status}"


def check_worker(
    path: Path, *, max_age_s: float, live: bool, now: dt.datetime | None = None
) -> tuple[bool, str]:
    """The worker's health file is fresh and its status acceptable."""
    try:
        health = json.loads(path.read_text())
        status = str(health["status"])
        updated = dt.datetime.fromisoformat(str(health["updated_at"]))
    except FileNotFoundError:
        return False, f"{path} does not exist (yet): is the worker running?"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"{path} is unreadable: {exc}"
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=dt.UTC)
    age = ((now or dt.datetime.now(dt.UTC)) - updated).total_seconds()
    if age > max_age_s:
        return False, f"{path} was last written {age:.0f} s ago (status {status})"
    accepted = ALIVE if live else READY
    detail = f"worker {health.get('worker_id', '?')}: {status}"
    if health.get("error"):
        detail += f" ({health['error']})"
    return status in accepted, detail


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.ops.healthcheck", description=__doc__)
    parser.add_argument("--url", default=os.environ.get("REPRISE_HEALTHCHECK_URL", DEFAULT_URL))
    parser.add_argument(
        "--worker-file",
        default=os.environ.get("REPRISE_WORKER_HEALTH_FILE", ""),
        help="check this worker health file instead of the API",
    )
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (worker file)")
    parser.add_argument("--live", action="store_true", help="accept a worker whose engine is down")
    args = parser.parse_args(argv)
    if args.worker_file:
        ok, detail = check_worker(Path(args.worker_file), max_age_s=args.max_age, live=args.live)
    else:
        ok, detail = check_api(args.url)
    print(("healthy: " if ok else "unhealthy: ") + detail)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
