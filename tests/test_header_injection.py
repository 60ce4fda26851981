"""A stranger's encoded line breaks never become headers of the mail the agency sends.

The stranger's mail comes in through the real ingest (a daemon over SMTP, or the real parse
and route); the agency answers it in the UI ("Answer by mail"), with a template filled from
the stranger's display name, or through the API; the worker sends it to a real aiosmtpd sink;
the test reads the bytes the sink got. Mail is written as the email package before
3.11.10 / 3.12.5 writes it (CVE-2024-6923; tests.test_mail_headers.UNPATCHED, on any
interpreter), so a line break that reached the email package would show as a real Bcc line.
"""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import html
import re
from email.policy import compat32

from admin_ui import create_app
from domain.tokens import create_api_token
from postroom.config import Settings
from postroom.outbound import project_reply_address
from postroom.outbound_send import send_due
from storage.models import Entry, OutboundMessage, Project
from storage.outbound import save_template
from tests.daemon import reserve_port
from tests.mail import message
from tests.test_api import deliver
from tests.test_mail_headers import unpatched_email_package  # noqa: F401 - autouse fixture
from tests.test_outbound import smtp_sink
from tests.web import csrf_token, login

CRLF_BCC = "=0D=0ABcc:_victim@evil.example=0D=0AReply-To:_x@evil.example=0D=0A=0D=0Aforged_body"
BODY = "Hello Anna,\n\nthe new hours are online."
WRITTEN = [
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "reply-to",
    "mime-version",
    "content-type",
]


def b_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


# subject headers as a stranger sends them; each survives the ingest in some form
STRANGER_SUBJECTS = [
    f"Hours =?utf-8?q?x{CRLF_BCC}?=",  # a plain encoded word
    f"Hours x=?utf-8?q?{CRLF_BCC}?=y",  # glued to the words around it
    "Hours " + b_word(f"=?utf-8?q?{CRLF_BCC}?="),  # an encoded word in an encoded word
    "Hours " + b_word("x\u2028Bcc: victim@evil.example\u2029\u0085y"),  # other line breaks
    "Hours =?utf-8?q?x=0BBcc:_victim@evil.example=0C=1C=1D=1Ey?=",  # \v \f and separators
]


def sent_mails(sink) -> list[bytes]:
    return [raw for _, _, raw in sink.received]


def assert_one_clean_mail(raw: bytes, *, to: str, reply_to: str, body: str) -> None:
    """The header block as written holds our headers once each; the body is ours."""
    written = email.message_from_bytes(raw, policy=compat32)
    names = [name.lower() for name in written]
    assert "bcc" not in names and names.count("reply-to") == 1, names
    assert sorted(set(names)) == sorted(n for n in WRITTEN if n in names), names
    assert all(names.count(name) == 1 for name in names), names
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in mail["To"].addresses] == [to]
    assert [a.addr_spec for a in mail["Reply-To"].addresses] == [reply_to]
    decoded = str(mail["Subject"])  # as the customer's mail program shows it
    assert "\r" not in decoded and "\n" not in decoded and "\u2028" not in decoded
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith(body), text  # the body is ours, not one a header line started


def with_sink(settings: Settings, port: int) -> Settings:
    outbound = dataclasses.replace(
        settings.outbound, smtp_url=f"smtp://127.0.0.1:{port}?security=none"
    )
    return dataclasses.replace(settings, outbound=outbound)


def test_answering_a_strangers_subject_by_mail_never_adds_a_header(web, bakery):
    evil_id = b_word(f"=?utf-8?q?{CRLF_BCC}?=")
    references = f"<ok@bakery.example> <{evil_id}@evil>"
    received = deliver(
        web.account,
        *(
            message(
                subject, sender="Anna <anna@bakery.example>", headers={"References": references}
            )
            for subject in STRANGER_SUBJECTS
        ),
    )
    assert len(received) == len(STRANGER_SUBJECTS)
    assert {entry.project_id for entry in received} == {bakery.id}
    port = reserve_port()
    settings = with_sink(web.app.config["POSTROOM_SETTINGS"], port)
    client = create_app(settings, testing=True).test_client()
    login(client, "member@agency.test")
    path = f"/projects/{bakery.id}/messages/new"
    for entry in received:
        form = client.get(f"{path}?answer={entry.id}").get_data(as_text=True)
        subject = html.unescape(re.search(r'name="subject" value="([^"]*)"', form)[1])
        assert subject.startswith("Re: Hours") and subject.isprintable(), subject
        response = client.post(
            f"{path}?answer={entry.id}",
            data={
                "csrf_token": csrf_token(client, path),
                "to": "anna@bakery.example",
                "to_other": "",
                "subject": subject,
                "body": BODY,
            },
        )
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
    reply_to = project_reply_address(Project.get_by_id(bakery.id), settings)
    with smtp_sink(port) as sink:
        assert send_due(settings) == (len(received), 0)
    assert len(sent_mails(sink)) == len(received)
    for raw in sent_mails(sink):
        assert_one_clean_mail(raw, to="anna@bakery.example", reply_to=reply_to, body=BODY)
        plain = (
            email.message_from_bytes(raw, policy=email.policy.default)
            .get_body(("plain",))
            .get_content()
        )
        assert plain.replace("\r\n", "\n").strip() == BODY  # no forged body after it
        references = email.message_from_bytes(raw, policy=compat32)["References"]
        assert "<ok@bakery.example>" in references and "evil" not in references


def test_a_display_name_in_a_template_variable_never_adds_a_header(web, bakery):
    for name in ("=?utf-8?q?Anna" + CRLF_BCC + "?=", b_word(f"=?utf-8?q?Anna{CRLF_BCC}?=")):
        deliver(web.account, message("Prices?", sender=f"{name} <anna@bakery.example>"))
    template = save_template(
        web.account.id,
        "Hello",
        "Hello {{ customer_name }}",
        "Dear {{ customer_name }},\nhere they are.",
    )
    port = reserve_port()
    settings = with_sink(web.app.config["POSTROOM_SETTINGS"], port)
    member = web.client("member")
    path = f"/projects/{bakery.id}/messages/new"
    form = member.get(f"{path}?template={template.id}&to=anna@bakery.example")
    subject = html.unescape(re.search(r'name="subject" value="([^"]*)"', form.get_data(True))[1])
    assert subject.startswith("Hello Anna") and subject.isprintable(), subject
    posted = member.post(
        path,
        data={
            "csrf_token": csrf_token(member, path),
            "subject": subject,
            "to": "anna@bakery.example",
            "to_other": "",
            "body": BODY,
        },
    )
    assert posted.status_code == 302, posted.get_data(as_text=True)[:500]
    token = create_api_token(web.users["member"])
    answer = web.app.test_client().post(
        f"/api/v1/projects/{bakery.id}/messages",
        headers={"Authorization": f"Bearer {token}"},
        json={"to": "anna@bakery.example", "template_id": template.id},
    )  # the subject is rendered on the server, from the stranger's name
    assert answer.status_code == 201, answer.get_json()
    assert "\n" not in answer.get_json()["subject"]
    with smtp_sink(port) as sink:
        assert send_due(settings) == (2, 0)
    reply_to = project_reply_address(bakery, settings)
    for raw in sent_mails(sink):
        body = BODY if b"new hours" in raw else "Dear "  # the UI's text, or the template's
        assert_one_clean_mail(raw, to="anna@bakery.example", reply_to=reply_to, body=body)


def test_an_api_subject_with_encoded_line_breaks_is_refused_with_a_clear_error(web):
    from domain.projects import create_project

    bakery = create_project(
        web.account.id, "Bakery Miller", customer_addresses=["anna@bakery.example"]
    )
    token = create_api_token(web.users["member"])
    client = web.app.test_client()
    for subject in [*STRANGER_SUBJECTS, "Hi\u2028Bcc: victim@evil.example", "Hi\x1cthere"]:
        response = client.post(
            f"/api/v1/projects/{bakery.id}/messages",
            headers={"Authorization": f"Bearer {token}"},
            json={"to": "anna@bakery.example", "subject": subject, "body": BODY},
        )
        assert response.status_code == 422, (subject, response.get_json())
        assert "subject must be one line" in response.get_json()["error"]
    assert OutboundMessage.select().count() == 0 and Entry.select().count() == 0
    typed = web.client("member")  # the same words in the UI form
    path = f"/projects/{bakery.id}/messages/new"
    page = typed.post(
        path,
        data={
            "csrf_token": csrf_token(typed, path),
            "subject": STRANGER_SUBJECTS[0],
            "to": "anna@bakery.example",
            "to_other": "",
            "body": BODY,
        },
    )
    assert page.status_code == 400 and "subject must be one line" in page.get_data(as_text=True)
