"""Make received HTML safe to show: nh3 sanitising, cid: images inline, remote images held back."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import nh3

TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "code", "col", "colgroup", "dd",
    "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "*": {"style", "title", "align", "valign", "width", "height", "dir", "lang"},
    "a": {"href", "name"},
    "img": {"src", "alt", "border"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor"},
    "td": {"colspan", "rowspan", "bgcolor", "nowrap"},
    "th": {"colspan", "rowspan", "bgcolor"},
    "col": {"span"},
    "ol": {"start", "type"},
}
# Only properties that cannot fetch anything (no background, no list-style-image, no content).
STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "text-indent", "text-transform", "line-height",
    "letter-spacing", "white-space", "vertical-align", "margin", "margin-top", "margin-right",
    "margin-bottom", "margin-left", "padding", "padding-top", "padding-right", "padding-bottom",
    "padding-left", "border", "border-top", "border-right", "border-bottom", "border-left",
    "border-color", "border-style", "border-width", "border-collapse", "border-spacing",
    "border-radius", "width", "max-width", "min-width", "height", "max-height", "min-height",
    "display", "float", "clear", "table-layout", "direction",
}  # fmt: skip
BLOCKED_IMAGE = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="24">'
        b'<rect width="120" height="24" fill="#eef2f6"/><text x="6" y="16" font-size="11" '
        b'fill="#61707f">image held back</text></svg>'
    ).decode()
)
INLINE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp")


def sanitize(
    markup: str,
    *,
    inline_image: Callable[[str], tuple[str, bytes] | None],
    load_remote_images: bool = False,
) -> tuple[str, int]:
    """Return safe HTML and how many remote images were held back.

    `inline_image(content_id)` returns (content type, bytes) of one of the mail's own parts.
    """
    held_back = 0

    def attribute_filter(tag: str, attribute: str, value: str) -> str | None:
        nonlocal held_back
        if tag == "img" and attribute == "src":
            lowered = value.strip().lower()
            if lowered.startswith("cid:"):
                found = inline_image(value.strip()[4:].strip("<>"))
                if found and found[0] in INLINE_TYPES:
                    return f"data:{found[0]};base64,{base64.b64encode(found[1]).decode()}"
                return BLOCKED_IMAGE
            if lowered.startswith(("http:", "https:", "//")):
                if load_remote_images:
                    return value
                held_back += 1
                return BLOCKED_IMAGE
            if lowered.startswith("data:image/") and not lowered.startswith("data:image/svg"):
                return value
            return None
        return value

    cleaned = nh3.clean(
        markup,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "cid", "data", "tel"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        attribute_filter=attribute_filter,
        filter_style_properties=STYLE_PROPERTIES,
    )
    # data: is allowed for images only; a data: or other link target is dropped
    cleaned = re.sub(r'href="(?!https?:|mailto:|tel:|#)[^"]*"', "", cleaned)
    return cleaned, held_back


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
        "img{max-width:100%;height:auto}</style></head><body>" + body + "</body></html>"
    )
