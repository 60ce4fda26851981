"""The frame of a mail that names its own images many thousand times: one query, a bounded page."""

from __future__ import annotations

import base64
import logging
import random
from email.message import EmailMessage
from email.policy import SMTP

from postroom.safe_html import BLOCKED_IMAGE, MAX_INLINE_BYTES, MAX_INLINE_IMAGES
from tests.test_ui_unassigned import receive

# A PNG header and 100 KB that do not compress (the email package would not mind either way).
IMAGE = b"\x89PNG\r\n\x1a\n" + random.Random(2).randbytes(100_000)


def image_bomb() -> bytes:
    html = '<img src="cid:logo@x.test">' * 20_000 + '<img src="cid:logo%40x.test">'
    html += "".join(f'<img src="cid:none{i}@x.test">' for i in range(2_000))
    mail = EmailMessage()
    mail["From"] = "a@b.test"
    mail["To"] = "inbox@in.example"
    mail["Subject"] = "20,000 logos"
    mail.set_content("text")
    mail.add_alternative(html, subtype="html")
    mail.get_payload()[1].add_related(
        IMAGE, maintype="image", subtype="png", cid="<logo@x.test>", filename="logo.png"
    )
    return mail.as_bytes(policy=SMTP)


def test_one_image_named_many_times_is_looked_up_once_and_placed_within_the_cap(web, caplog):
    entry = receive(web.account.id, image_bomb())
    client = web.client("member")
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        response = client.get(f"/entries/{entry.id}/body")
    queries = [r.getMessage() for r in caplog.records if r.name == "peewee"]
    assert response.status_code == 200
    assert sum('from "attachment"' in query.lower() for query in queries) == 1
    assert len(queries) < 10  # the session, the user, the entry and its parts: not per image
    body = response.get_data(as_text=True)
    url = "data:image/png;base64," + base64.b64encode(IMAGE).decode()
    placed = body.count(f'src="{url}"')
    assert placed == MAX_INLINE_BYTES // len(url)  # the first ones, %-encoded or not
    assert body.count(BLOCKED_IMAGE) == 22_001 - placed  # the rest, and the parts not found
    assert len(body) < MAX_INLINE_BYTES + 22_001 * (len(BLOCKED_IMAGE) + 40)
    assert MAX_INLINE_IMAGES < 2_001  # the names past it were not even asked for
