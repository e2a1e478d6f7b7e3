"""CSV export of board rows: the same rows and values as the JSON page, one column per field.

Numbers are written exactly as JSON writes them (shortest round-trip repr), booleans as
``true``/``false`` and nulls as empty cells. Text cells that a spreadsheet would run as a
formula (starting with = + - @, a tab or a carriage return) get a leading apostrophe (OWASP
"CSV injection"); titles and author names are the only free text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from app.leaderboard.schemas import LeaderboardRow

COLUMNS = (
    "rank",
    "rank_band",
    "submission_id",
    "title",
    "author",
    "version",
    "date",
    "metric",
    "direction",
    "claimed",
    "reproduced_mean",
    "ci95_low",
    "ci95_high",
    "verdict",
    "lean",
    "quality",
    "seed_selection_flag",
    "deterministic",
    "self_reported",
    "url",
)
_TEXT = frozenset({"title", "author"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(name: str, value: Any) -> str:
    """One CSV cell from a JSON-mode value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if name in _TEXT and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def to_csv(rows: Sequence[LeaderboardRow], *, base_url: str = "") -> str:
    """Rows as CSV text with a header line (RFC 4180, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        doc = row.model_dump(mode="json")
        doc["url"] = base_url + doc["links"]["web"]
        writer.writerow([cell(c, doc[c]) for c in COLUMNS])
    return out.getvalue()
