"""Markdown to safe HTML: markdown-it (CommonMark, raw HTML off) and then nh3's allow-list.

Two layers on purpose: markdown-it escapes raw HTML, and nh3 removes anything a future option or
plugin might let through (scripts, event handlers, ``javascript:`` links).
"""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    "table"
)
TAGS = {
    "a", "p", "em", "strong", "code", "pre", "ul", "ol", "li", "blockquote", "h3", "h4", "h5",
    "h6", "hr", "br", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}}


@functools.lru_cache(maxsize=256)
def render(text: str, *, heading_offset: int = 2) -> str:
    """Safe HTML for ``text``; headings are shifted down so they nest under the page's h2."""
    html = _md.render(text)
    for level in range(6, 0, -1):  # h1 → h3 with the default offset, never beyond h6
        target = min(6, level + heading_offset)
        html = html.replace(f"<h{level}>", f"<h{target}>").replace(f"</h{level}>", f"</h{target}>")
    return str(
        nh3.clean(
            html,
            tags=TAGS,
            attributes=ATTRIBUTES,
            url_schemes={"http", "https", "mailto"},
            link_rel="nofollow noopener noreferrer",
        )
    )
