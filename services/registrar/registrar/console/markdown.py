"""Model cards are Markdown written by whoever registers a version: rendered
with raw HTML disabled, so a card can show a table but never run a script
(markdown-it also refuses javascript: and other unsafe link targets)."""

from markdown_it import MarkdownIt
from markupsafe import Markup

_renderer = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def rendered(text: str | None) -> Markup:
    return Markup(_renderer.render(text or ""))  # safe: raw HTML is off, the renderer escapes it
