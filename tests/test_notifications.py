"""Notifications: events become bell entries and emails as each user chose, delivered over SMTP.

The jobs run as the worker runs them; their mail goes to a real aiosmtpd sink configured as
`[outbound] smtp_url`. Customer mail arrives through the real parse and route.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller

from domain import entries as domain_entries
from domain import projects as domain_projects
from postroom.config import load_settings
from postroom.jobs import digest, notify
from storage import notifications as store
from storage.models import Notification
from tests.daemon import reserve_port
from tests.mail import message
from tests.test_ui_unassigned import receive
from tests.web import post

BASE = "https://postroom.agency.test"


@dataclass
class Sink:
    """An SMTP server that keeps what it is sent; it may refuse chosen mails."""

    port: int
    mails: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    data_refusals: dict = field(default_factory=dict)  # recipient -> the reply to DATA
    mail_refusals: list = field(default_factory=list)  # replies to the next MAIL FROMs

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self.lock:
            if self.mail_refusals:
                return self.mail_refusals.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_DATA(self, server, session, envelope):
        refusal = next(
            (self.data_refusals[r] for r in envelope.rcpt_tos if r in self.data_refusals), None
        )
        if refusal:
            return refusal
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.mails.append((list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 kept"

    def to(self, address: str) -> list:
        with self.lock:
            return [mail for rcpts, mail in self.mails if address in rcpts]

    def take(self) -> list:
        with self.lock:
            taken, self.mails[:] = list(self.mails), []
        return taken


@pytest.fixture
def sink():
    keeper = Sink(reserve_port())
    controller = Controller(keeper, hostname="127.0.0.1", port=keeper.port)
    controller.start()
    yield keeper
    controller.stop()


@pytest.fixture
def settings(sink, tmp_path):
    config = tmp_path / "worker.toml"
    config.write_text(
        '[ingest]\ndomains = ["in.example"]\n'
        f'[web]\nbase_url = "{BASE}"\n'
        f'[outbound]\nsmtp_url = "smtp://127.0.0.1:{sink.port}?security=none"\n'
        'from_address = "postroom@agency.test"\n'
    )
    return load_settings(config)


def run_worker_jobs(settings) -> None:
    """What the worker does every few seconds: events to notifications, immediate mail."""
    notify.process_events(settings)
    notify.send_immediate(settings)


def rows_of(user) -> list[Notification]:
    return list(Notification.select().where(Notification.user == user.id).order_by(Notification.id))


def bakery_followed_by(web, *roles: str):
    bakery = domain_projects.create_project(
        web.account.id, "Bakery Sommer", customer_addresses=["anna@bakery.test"]
    )
    for role in roles:
        store.set_following(bakery.id, web.users[role].id, True)
    return bakery


def test_followers_hear_of_customer_mail_as_each_chose_at_once_or_in_one_digest(
    web, sink, settings
):
    bakery = bakery_followed_by(web, "owner", "admin", "member")
    owner, admin, member = (web.users[r] for r in ("owner", "admin", "member"))
    # admin: customer mail in the app only; owner: by email, in the daily digest
    post(web.client("admin"), "/profile", {"in_app": "customer_mail"}, token_from="/profile")
    store.save_preferences(owner.id, {"customer_mail": store.Preference(email=True, digest=True)})

    first = receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
    run_worker_jobs(settings)

    [mail] = sink.to("member@agency.test")
    assert mail["Subject"] == "Bakery Sommer: new mail from anna@bakery.test"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["From"] == "Agency <postroom@agency.test>"  # the account's name: no from_name set
    assert mail["Message-ID"].endswith("@agency.test>")  # the sender's domain
    body = mail.get_content()
    assert "Mail from anna@bakery.test in Bakery Sommer: Opening hours" in body
    assert f"{BASE}/entries/{first.id}" in body
    assert sink.to("admin@agency.test") == [] and sink.to("owner@agency.test") == []
    assert [(n.in_app, n.email_due) for n in rows_of(admin)] == [(True, "")]
    assert rows_of(web.users["read-only"]) == []  # follows nothing
    sink.take()

    second = receive(web.account.id, message("New photos", sender="anna@bakery.test"))
    third = receive(web.account.id, message("And the menu", sender="anna@bakery.test"))
    domain_projects.update_project(bakery, member.id, status="live")  # in the app only, by default
    run_worker_jobs(settings)
    [grouped] = sink.to("member@agency.test")
    assert grouped["Subject"] == "2 updates in Bakery Sommer"
    assert f"/entries/{second.id}" in grouped.get_content()
    assert f"/entries/{third.id}" in grouped.get_content()
    assert len(sink.take()) == 1  # nobody else, nothing for the status change
    assert "Status change in Bakery Sommer" in rows_of(owner)[-1].text
    assert [n.text for n in rows_of(member)][-1].startswith("Mail from")  # not told of own act

    digest.send_digests(settings)
    [daily] = sink.to("owner@agency.test")
    assert daily["Subject"] == "Your daily postroom digest: 3 updates in Bakery Sommer"
    assert all(f"/entries/{e.id}" in daily.get_content() for e in (first, second, third))
    assert len(sink.take()) == 1
    digest.send_digests(settings)
    run_worker_jobs(settings)
    assert sink.take() == []  # each notification is mailed once


def test_auto_submitted_mail_and_bounces_are_shown_in_the_app_and_never_emailed(
    web, sink, settings
):
    bakery_followed_by(web, "owner", "member")
    reply = message(
        "Out of office", sender="anna@bakery.test", headers={"Auto-Submitted": "auto-replied"}
    )
    bounce = "\r\n".join(
        [
            "From: MAILER-DAEMON@bakery.test",
            "To: team@agency.test",
            "Subject: Undelivered Mail",
            "Message-ID: <dsn-1@bakery.test>",
            "MIME-Version: 1.0",
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
            "",
            "--b",
            "Content-Type: text/plain",
            "",
            "The mail could not be delivered.",
            "",
            "--b",
            "Content-Type: message/delivery-status",
            "",
            "Reporting-MTA: dns; mx.bakery.test",
            "",
            "Final-Recipient: rfc822; x@bakery.test",
            "Action: failed",
            "Status: 5.1.1",
            "",
            "--b--",
            "",
        ]
    ).encode()
    receive(web.account.id, reply)
    unassigned_bounce = receive(web.account.id, bounce)
    assert unassigned_bounce.is_bounce and unassigned_bounce.project_id is None
    run_worker_jobs(settings)
    digest.send_digests(settings)

    assert sink.take() == []
    made = list(Notification.select())
    assert {n.event_type for n in made} == {"customer_mail", "unassigned_mail"}
    assert all(n.in_app and n.email_due == "" for n in made)
    member_sees = web.client("member").get("/notifications").get_data(as_text=True)
    assert "Out of office" in member_sees and "Undelivered Mail" in member_sees


def test_a_mention_notifies_the_named_user_and_nobody_else(web, sink, settings):
    bakery = bakery_followed_by(web)
    member = web.users["member"]
    domain_entries.add_manual_entry(
        bakery, member, kind="note", text="@admin can you call Anna back?"
    )
    run_worker_jobs(settings)

    [mail] = sink.take()
    assert mail[0] == ["admin@agency.test"]
    [row] = Notification.select()
    assert row.user_id == web.users["admin"].id and row.event_type == "mention"
    assert row.text == "Member mentioned you in Bakery Sommer: @admin can you call Anna back?"

    # a name works as well as the address's local part; the author is never told
    domain_entries.add_manual_entry(bakery, member, kind="note", text="Thanks @owner and @member.")
    run_worker_jobs(settings)
    assert [rcpts for rcpts, _ in sink.take()] == [["owner@agency.test"]]


def test_unassigned_mail_reaches_members_who_can_act_on_it_in_the_daily_digest(web, sink, settings):
    receive(web.account.id, message("Who are you?", sender="stranger@else.test"))
    run_worker_jobs(settings)
    assert sink.take() == []  # unassigned mail is a digest item by default
    told = {n.user_id for n in Notification.select()}
    assert told == {web.users[r].id for r in ("owner", "admin", "member")}  # not read-only
    digest.send_digests(settings)
    assert sorted(r for rcpts, _ in sink.take() for r in rcpts) == [
        "admin@agency.test",
        "member@agency.test",
        "owner@agency.test",
    ]


def _bell(page: str) -> int:
    return int(re.search(r'id="notification-count">(\d+)<', page).group(1))


def test_the_bell_counts_unread_notifications_and_reading_them_clears_it(web, settings):
    bakery_followed_by(web, "member", "read-only")
    first = receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
    receive(web.account.id, message("New photos", sender="anna@bakery.test"))
    notify.process_events(settings)
    client = web.client("member")
    assert _bell(client.get("/").get_data(as_text=True)) == 2

    page = client.get("/notifications").get_data(as_text=True)
    assert page.index("New photos") < page.index("Opening hours")  # newest first
    [mine, _] = sorted(rows_of(web.users["member"]), key=lambda n: n.entry_id)
    opened = post(client, f"/notifications/{mine.id}/read", {"next": f"/entries/{first.id}"})
    assert opened.status_code == 302 and opened.location.endswith(f"/entries/{first.id}")
    assert _bell(client.get("/").get_data(as_text=True)) == 1

    theirs = rows_of(web.users["read-only"])[0]
    assert post(client, f"/notifications/{theirs.id}/read").status_code == 404  # not mine
    assert post(client, "/notifications/read-all").status_code == 302
    assert _bell(client.get("/notifications").get_data(as_text=True)) == 0

    reader = web.client("read-only")  # read-only members may read their own notifications
    assert post(reader, "/notifications/read-all").status_code == 302
    assert _bell(reader.get("/").get_data(as_text=True)) == 0


def test_the_profile_shows_the_defaults_saves_choices_and_lists_followed_projects(web):
    bakery = domain_projects.create_project(web.account.id, "Bakery Sommer")
    client = web.client("read-only")
    page = client.get("/profile").get_data(as_text=True)
    assert re.search(r'name="email" value="mention" checked', page)
    assert not re.search(r'name="email" value="status_change" checked', page)
    assert re.search(r'name="delivery-unassigned_mail".*?value="digest" selected', page, re.S)
    assert "You follow no project yet." in page

    followed = post(client, f"/projects/{bakery.id}/follow", {"follow": "1"})
    assert followed.status_code == 302
    assert followed.location.endswith(f"/projects/{bakery.id}/protocol")
    saved = post(
        client,
        "/profile",
        {
            "in_app": ["mention", "file_upload"],
            "email": ["file_upload"],
            "delivery-file_upload": "digest",
        },
        token_from="/profile",
    )
    assert saved.status_code == 302
    page = client.get(saved.location).get_data(as_text=True)
    assert "Your notification settings are saved." in page
    assert f'id="followed-{bakery.id}"' in page
    prefs = store.preferences_of([web.users["read-only"].id])[web.users["read-only"].id]
    assert prefs["file_upload"] == store.Preference(in_app=True, email=True, digest=True)
    assert prefs["customer_mail"] == store.Preference(in_app=False, email=False)
    assert post(client, f"/projects/{bakery.id}/follow", {"follow": "0"}).status_code == 302
    assert store.followed_projects(web.users["read-only"].id) == []
    assert post(client, "/projects/999999/follow", {"follow": "1"}).status_code == 404


def test_a_users_bad_record_never_stops_the_notification_mail_of_the_others(web, sink, settings):
    from storage.models import Event, User

    bakery_followed_by(web, "owner", "admin", "member")
    owner, admin = web.users["owner"], web.users["admin"]
    # records the UI refuses now, written straight into storage (an older version, an import)
    User.update(name="Eve\r\nBcc: victim@evil.example").where(User.id == owner.id).execute()
    User.update(email="admin\r\nbcc: victim@evil.example").where(User.id == admin.id).execute()
    broken = Event.create(account=web.account.id, kind="mention", payload='{"names": 5}')
    receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
    run_worker_jobs(settings)

    [mail] = sink.to("member@agency.test")  # the others hear of it
    assert "Opening hours" in mail.get_content()
    [eves] = sink.to("owner@agency.test")  # the name is one line: nothing added to the mail
    assert eves["To"].addresses[0].display_name == "Eve Bcc: victim@evil.example"
    assert eves["Bcc"] is None and len(eves.get_all("To")) == 1
    assert not any("victim@evil.example" in rcpts for rcpts, _ in sink.mails)
    [row] = rows_of(admin)  # the mail that cannot be written is set aside, shown in the app
    assert (row.email_due, row.emailed_at, row.in_app) == (store.EMAIL_FAILED, None, True)
    assert Event.get_by_id(broken.id).processed_at is not None  # set aside, not retried
    assert len(sink.take()) == 2

    receive(web.account.id, message("New photos", sender="anna@bakery.test"))
    run_worker_jobs(settings)  # the next run goes on as well, and sends nothing twice
    assert sorted(r for rcpts, _ in sink.take() for r in rcpts) == [
        "member@agency.test",
        "owner@agency.test",
    ]


def test_the_team_page_refuses_a_name_with_a_line_break(web):
    from storage.models import User

    owner = web.client("owner")
    for name in ("Eve\r\nBcc: victim@evil.example", "Eve\u2028Smith", "Eve\x00"):
        page = post(
            owner,
            "/team/members",
            {
                "email": "eve@agency.test",
                "name": name,
                "role": "member",
                "password": "a long passphrase 7",
            },
            token_from="/team",
        )
        assert page.status_code == 400 and "must be one line" in page.get_data(as_text=True)
    assert not User.select().where(User.email == "eve@agency.test").exists()


@pytest.mark.parametrize(
    ("stage", "reply", "kept_for_later"),
    [
        ("DATA", "451 4.3.0 try again later", True),
        ("MAIL", "452 4.5.3 too many mails from you just now", True),
        ("DATA", "554 5.7.1 not from you", False),
    ],
)
def test_a_mail_refused_for_one_user_leaves_the_others_mail_going_in_the_same_run(
    web, sink, settings, stage, reply, kept_for_later
):
    bakery_followed_by(web, "owner", "admin", "member")
    if stage == "DATA":
        sink.data_refusals["admin@agency.test"] = reply
    else:
        sink.mail_refusals.append(reply)  # the run's first mail, whoever it is for
    receive(web.account.id, message("Opening hours", sender="anna@bakery.test"))
    run_worker_jobs(settings)

    members = ("owner@agency.test", "admin@agency.test", "member@agency.test")
    got = sorted(r for rcpts, _ in sink.take() for r in rcpts)
    assert len(got) == 2  # the other two users got theirs in this run
    [refused] = set(members) - set(got)
    if stage == "DATA":
        assert refused == "admin@agency.test"
    user = next(u for u in web.users.values() if u.email == refused)
    [row] = rows_of(user)
    assert row.emailed_at is None and row.in_app
    assert (row.email_due == store.EMAIL_FAILED) is not kept_for_later

    sink.data_refusals.clear()
    run_worker_jobs(settings)  # the next run: the refused-for-now mail goes, nothing twice
    again = [r for rcpts, _ in sink.take() for r in rcpts]
    assert again == ([refused] if kept_for_later else [])
