"""README badges: "Reprise | reproduced" in the verdict's colour, as a small flat SVG.

Colours give white text a contrast of at least 4.5:1 (WCAG AA), and the state is always written
out, so the badge never relies on colour alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.leaderboard import repository
from app.submissions.models import Submission, SubmissionStatus

LABEL = "Reprise"
LABEL_COLOUR = "#24292f"
STATES: dict[str, tuple[str, str]] = {
    "reproduced": ("reproduced", "#1a7f37"),
    "exceeded": ("exceeded", "#0b6e4f"),
    "not_reproduced": ("not reproduced", "#b42318"),
    "inconclusive": ("inconclusive", "#8a5a00"),
    "insufficient_data": ("insufficient data", "#57606a"),
    "pending": ("pending", "#0550ae"),
    "withdrawn": ("withdrawn", "#5c6670"),
}
# Rough advance widths of 11 px Verdana, enough to size the boxes (shields.io does the same).
_NARROW = set("ijlt.,:;!|'() ")
_WIDE = set("mwMW")


def _text_width(text: str) -> int:
    width = 0.0
    for ch in text:
        width += 3.6 if ch in _NARROW else 9.6 if ch in _WIDE else 7.0
    return round(width)


@dataclass(frozen=True)
class Badge:
    svg: bytes
    etag: str
    state: str


def render(state: str) -> Badge:
    """The badge for one state (a verdict, ``pending`` or ``withdrawn``)."""
    message, colour = STATES[state]
    lw, mw = _text_width(LABEL) + 12, _text_width(message) + 12
    total = lw + mw
    title = escape(f"{LABEL}: {message}")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        f'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="{LABEL_COLOUR}"/>'
        f'<rect x="{lw}" width="{mw}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" '
        f'font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{lw / 2:.1f}" y="14">{escape(LABEL)}</text>'
        f'<text x="{lw + mw / 2:.1f}" y="14">{escape(message)}</text></g></svg>'
    )
    data = svg.encode()
    return Badge(svg=data, etag='"' + hashlib.sha256(data).hexdigest()[:32] + '"', state=state)


async def badge_for(session: AsyncSession, *, submission_id: int) -> Badge:
    """The standing verdict of a submission, ``pending`` before its first verdict."""
    submission = await session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(f"no submission {submission_id}")
    if submission.status == SubmissionStatus.withdrawn.value:
        return render("withdrawn")
    entry = await repository.entry_of(session, submission_id)
    if entry is None or entry.claim_verdict not in STATES:
        return render("pending")
    return render(entry.claim_verdict)
