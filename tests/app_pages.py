"""Every HTML page of the admin UI, with real ids: seeded data and the app's GET routes.

`seed(web)` fills the `web` fixture's account with one of everything a page can show (a
project, an entry of each kind, unassigned and spam mail, an attachment, a template, a block
rule, an API token, a notification), written the hard way: long unbroken words, long
addresses.  `html_pages(app, seeded)` lists (endpoint, url) for every GET rule of the app,
path parameters filled from the seed, so a new route is checked without anyone adding it.
Only the endpoints of NOT_HTML are left out, each with its reason.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.blocks import block_sender
from domain.templates import save_template
from domain.tokens import create_api_token
from postroom.jobs import notify
from postroom.outbound import queue_message
from storage import notifications as notification_store
from storage.models import Attachment
from tests.test_ui_unassigned import receive

# Words with no place to break: what a phone-width page has to wrap anyway.
LONG_WORD = "Betriebskostenabrechnungsnachforderungsbescheid" * 2
LONG_LOCAL = "rechnungsstelle.buchhaltung.mahnwesen.kundenservice"
LONG_DOMAIN = "sehr-lange-firmenbezeichnung-mit-bindestrichen.example"
LONG_ADDRESS = f"{LONG_LOCAL}@{LONG_DOMAIN}"

# GET endpoints that answer with something else than a page of the app, and why.
NOT_HTML = {
    "static": "CSS, JavaScript: files, not pages",
    "health.healthz": "plain-text health check for load balancers",
    "health.metrics": "Prometheus metrics, plain text",
    "entries.body": "the mail's own HTML, shown inside the entry page's sandboxed frame "
    "(checked as part of the entry page it sits in)",
    "entries.raw": "the stored message as text/plain (message/rfc822), a download",
    "entries.attachment": "the attachment's own bytes, a download",
}
NOT_HTML_PREFIXES = {"api.": "the JSON API (answers JSON, never a page)"}


@dataclass
class Seeded:
    """Ids the routes' path parameters are filled with (several values: every one is loaded)."""

    ids: dict[str, list[int]] = field(default_factory=dict)


def long_mail() -> bytes:
    """Unassigned mail with a long unbroken subject and address, and a long-named attachment."""
    mail = EmailMessage()
    mail["From"] = f"{LONG_WORD} <{LONG_ADDRESS}>"
    mail["To"] = f"inbox.{LONG_LOCAL}@in.example"
    mail["Cc"] = ", ".join(f"{n}.{LONG_ADDRESS}" for n in range(4))
    mail["Subject"] = f"Re: {LONG_WORD} {LONG_WORD}"
    mail["Message-ID"] = f"<{LONG_LOCAL}.{uuid.uuid4().hex}@{LONG_DOMAIN}>"
    mail["Date"] = "Thu, 26 Nov 2026 10:00:00 +0100"
    mail.set_content(f"See {LONG_WORD} and https://{LONG_DOMAIN}/{LONG_WORD}/{LONG_WORD}\n")
    mail.add_attachment(
        b"%PDF-1.4 test", maintype="application", subtype="pdf", filename=f"{LONG_WORD}.pdf"
    )
    return mail.as_bytes().replace(b"\n", b"\r\n")


def html_mail() -> bytes:
    """A customer's HTML mail (with a plain-text part), as mail clients send it."""
    mail = EmailMessage()
    mail["From"] = f"Anna <anna@{LONG_DOMAIN}>"
    mail["To"] = "inbox@in.example"
    mail["Subject"] = "Our new opening hours"
    mail["Message-ID"] = f"<html.{uuid.uuid4().hex}@{LONG_DOMAIN}>"
    mail["Date"] = "Fri, 27 Nov 2026 09:30:00 +0100"
    mail.set_content("Opening hours: Mon-Fri 7-18\n")
    mail.add_alternative(
        "<html><body><h2 style='color:#999'>Opening hours</h2>"
        "<p>Mon&ndash;Fri <b>7&ndash;18</b>, <a href='https://example.org/'>map</a></p>"
        "<img src='https://example.org/track.gif' width='1' height='1'></body></html>",
        subtype="html",
    )
    return mail.as_bytes().replace(b"\n", b"\r\n")


def seed(web) -> Seeded:
    """One of everything, in the account of the `web` fixture; returns the ids to fill in."""
    account_id = web.account.id
    owner = web.users["owner"]
    settings = web.app.config["POSTROOM_SETTINGS"]
    project = domain_projects.create_project(
        account_id,
        f"Bakery {LONG_WORD}",
        domain=LONG_DOMAIN,
        customer_addresses=[f"anna@{LONG_DOMAIN}", LONG_ADDRESS],
    )
    domain_projects.set_status(project, "in progress")  # a badge of two words
    notification_store.set_following(project.id, owner.id, True)
    filed = receive(account_id, long_mail())  # from a customer address: filed under the project
    html = receive(account_id, html_mail())  # shown in the entry page's sandboxed frame
    stranger = long_mail().replace(LONG_LOCAL.encode(), b"stranger." + LONG_LOCAL.encode())
    unassigned = receive(account_id, stranger)
    spam = receive(
        account_id, long_mail().replace(b"Re: ", b"Win: ").replace(b"From: ", b"From: x")
    )
    domain_entries.discard_spam(spam, owner.id, block="sender")
    block_sender(account_id, f"x@{LONG_DOMAIN}", "domain")
    outbound = queue_message(
        project, owner, LONG_ADDRESS, f"Offer {LONG_WORD}", f"Text {LONG_WORD}", settings=settings
    )
    note = domain_entries.add_manual_entry(project, owner, kind="note", text=f"Note {LONG_WORD}")
    call = domain_entries.add_manual_entry(project, owner, kind="call", text=f"Call {LONG_WORD}")
    domain_entries.set_done(note, owner.id, True)
    template = save_template(account_id, f"Offer {LONG_WORD}", "Offer", f"Dear {LONG_WORD}")
    create_api_token(owner, f"script-{LONG_WORD}"[:60])
    notify.process_events(settings)
    attachment = Attachment.get(Attachment.entry == filed.id)
    return Seeded(
        ids={
            "project_id": [project.id],
            "entry_id": [filed.id, unassigned.id, spam.id, outbound.id, note.id, call.id, html.id],
            "template_id": [template.id],
            "user_id": [web.users["member"].id],
            "attachment_id": [attachment.id],
        }
    )


def excluded(endpoint: str) -> str | None:
    """Why an endpoint is not a page of the app (None: it is one)."""
    if endpoint in NOT_HTML:
        return NOT_HTML[endpoint]
    return next(
        (why for prefix, why in NOT_HTML_PREFIXES.items() if endpoint.startswith(prefix)), None
    )


PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def html_pages(app, seeded: Seeded) -> list[tuple[str, str]]:
    """(endpoint, url) for every GET rule of the app that is a page, each id of the seed."""
    pages = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in (rule.methods or set()) or excluded(rule.endpoint):
            continue
        names = PARAMETER.findall(rule.rule)
        missing = [name for name in names if name not in seeded.ids]
        assert not missing, f"{rule.rule}: tests/app_pages.py seeds no {missing}; add them"
        for values in itertools.product(*(seeded.ids[name] for name in names)):
            filled = dict(zip(names, values, strict=True))
            url = PARAMETER.sub(lambda m, filled=filled: str(filled[m.group(1)]), rule.rule)
            pages.append((rule.endpoint, url))
    return pages
