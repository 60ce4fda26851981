"""Show received HTML safely: the copy sanitised at filing, in a sandboxed frame of its own.

Sanitising (nh3) happens once, when a mail is filed (postroom/safe_html.py); a view only
runs `show` over the stored copy, a linear pass that puts cid: images inline (the parts
looked up in one query, each encoded once, at most MAX_INLINE_BYTES per view) and holds
remote images back. Entries filed before that (migration 0008) are sanitised when shown,
up to LEGACY_SANITISE_CHARS of HTML; bigger ones show their text until `postroom reprocess
--all` prepares them.
"""

from __future__ import annotations

from postroom.safe_html import NOTE_TOO_BIG_TO_SHOW, make_safe, show
from storage.models import Entry

LEGACY_SANITISE_CHARS = 200_000

__all__ = ["frame_document", "frame_policy", "show", "stored_safe"]


def stored_safe(entry: Entry) -> tuple[str, str]:
    """The entry's sanitised HTML ("" for none) and the code of the note that goes with it."""
    if entry.html_safe is not None:
        return entry.html_safe, entry.html_note or ""
    if not entry.html:
        return "", ""
    if len(entry.html) > LEGACY_SANITISE_CHARS:
        return "", NOTE_TOO_BIG_TO_SHOW
    safe = make_safe(entry.html)
    return safe.html, safe.note


FRAME_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:{remote}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)


def frame_policy(load_remote_images: bool) -> str:
    """The CSP of the sandboxed frame that shows a mail's HTML."""
    return FRAME_CSP.format(remote=" https: http:" if load_remote_images else "")


def frame_document(body: str) -> str:
    """Wrap sanitised HTML in a minimal document for the sandboxed frame."""
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<base target="_blank">'
        "<style>body{font:15px/1.5 system-ui,sans-serif;margin:12px;color:#1f2933}"
        "img{max-width:100%;height:auto}"
        # the app's focus ring on the mail's links too (the mail's own styles cannot hide it)
        ":focus-visible{outline:3px solid #175cd3!important;outline-offset:2px!important}"
        "</style></head><body>" + body + "</body></html>"
    )
