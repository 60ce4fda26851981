"""Projects in the admin UI: create with customer addresses, edit, status changes, files."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from domain.projects import create_project
from storage.accounts import create_account
from storage.filing import AttachmentRecord
from storage.intake import Delivery, IntakeBatchItem, record_batch
from storage.models import Activity, CustomerAddress, Entry, Project
from tests.filing import file_intake
from tests.web import post


def receive(
    project: Project,
    subject: str,
    *,
    sender: str = "anna@bakery.test",
    text: str = "Hello",
    when: dt.datetime | None = None,
    attachments: tuple[AttachmentRecord, ...] = (),
) -> Entry:
    """Receive a mail sent to the project's reply address: parsed, routed and filed by the
    ingest pipeline, in this process."""
    when = when or dt.datetime(2026, 11, 27, 9, 0)
    mail = EmailMessage()
    mail["From"], mail["Subject"] = sender, subject
    mail["Date"] = format_datetime(when.replace(tzinfo=dt.UTC))
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@bakery.test>"
    mail.set_content(text)
    for item in attachments:
        kind, _, sub = item.content_type.partition("/")
        mail.add_attachment(item.data, maintype=kind, subtype=sub, filename=item.filename)
    raw = mail.as_bytes(policy=SMTP)
    delivery = Delivery(
        queue_id="Q1",
        account_id=project.account_id,
        recipient="inbox@in.example",
        project_hint=project.id,
        mail_from=sender,
        peer="127.0.0.1:1",
        helo="mta",
        protocol="lmtp",
        received_at=when,
    )
    digest = hashlib.sha256(raw).hexdigest()
    [[recorded]] = record_batch([IntakeBatchItem(digest, len(raw), raw, (delivery,))])
    return file_intake(recorded.intake_id)


def pdf(name: str, size: int = 1500) -> AttachmentRecord:
    return AttachmentRecord(name, name, "application/pdf", b"%PDF" + b"x" * (size - 4))


def test_a_new_project_keeps_its_customer_addresses_lower_cased(web):
    client = web.client("member")
    response = post(
        client,
        "/projects/new",
        {
            "name": "Bakery Schmidt",
            "domain": "https://www.Bakery-Schmidt.test/",
            "status": "in progress",
            "contact_name": "Anna Schmidt",
            "addresses": "Anna@Bakery-Schmidt.test\nshop@bakery-schmidt.test",
        },
    )
    assert response.status_code == 302
    project = Project.get(Project.name == "Bakery Schmidt")
    assert response.headers["Location"].endswith(f"/projects/{project.id}/protocol")
    assert (project.domain, project.status, project.contact_name) == (
        "www.bakery-schmidt.test",
        "in progress",
        "Anna Schmidt",
    )
    assert sorted(a.address for a in project.customer_addresses) == [
        "anna@bakery-schmidt.test",
        "shop@bakery-schmidt.test",
    ]
    page = client.get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert "anna@bakery-schmidt.test" in page and "Anna Schmidt" in page


def test_an_invalid_address_is_refused_with_a_message_and_nothing_is_saved(web):
    client = web.client("member")
    response = post(
        client,
        "/projects/new",
        {
            "name": "Florist",
            "status": "lead",
            "addresses": "ok@florist.test\nnot-an-address",
        },
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "not a valid email address: &#39;not-an-address&#39;" in page
    assert "Nothing was saved" in page
    assert 'value="Florist"' in page  # the form keeps what was typed
    assert Project.select().count() == 0
    assert CustomerAddress.select().count() == 0


def test_an_address_of_another_project_is_refused_but_other_accounts_do_not_count(web):
    create_project(web.account.id, "Bakery", customer_addresses=["anna@bakery.test"])
    elsewhere = create_account("Other agency")
    create_project(elsewhere.id, "Theirs", customer_addresses=["bob@shared.test"])
    client = web.client("member")
    response = post(
        client,
        "/projects/new",
        {
            "name": "Café",
            "status": "lead",
            "addresses": "ANNA@bakery.test",
        },
    )
    assert response.status_code == 400
    assert "anna@bakery.test is already a customer address of Bakery" in response.get_data(
        as_text=True
    )
    response = post(
        client,
        "/projects/new",
        {
            "name": "Café",
            "status": "lead",
            "addresses": "bob@shared.test",
        },
    )
    assert response.status_code == 302


def test_a_project_needs_a_name_and_a_configured_status(web):
    client = web.client("member")
    response = post(client, "/projects/new", {"name": " ", "status": "lead"})
    assert response.status_code == 400
    assert "Give the project a name." in response.get_data(as_text=True)
    response = post(client, "/projects/new", {"name": "X", "status": "haunted"})
    assert response.status_code == 400
    assert "Choose one of the listed statuses." in response.get_data(as_text=True)
    assert Project.select().count() == 0


def test_the_project_list_shows_status_and_open_entries_and_finds_by_name_or_domain(web):
    bakery = create_project(web.account.id, "Bakery Schmidt", domain="bakery.test", status="live")
    create_project(web.account.id, "Florist", domain="flowers.test")
    receive(bakery, "Opening hours", when=dt.datetime(2026, 11, 1))
    done = receive(bakery, "Thanks", when=dt.datetime(2026, 11, 2))
    done.status = "done"
    done.save()
    client = web.client("read-only")
    page = client.get("/projects").get_data(as_text=True)
    row = re.search(rf'<tr class="project[^"]*" id="project-{bakery.id}">.*?</tr>', page, re.S)
    assert row and "live" in row.group(0)
    assert '<span class="count">1</span>' in row.group(0)
    assert "New project" not in page  # read-only users cannot create
    found = client.get("/projects?q=flowers").get_data(as_text=True)
    assert "Florist" in found and "Bakery Schmidt" not in found


def test_editing_a_project_and_changing_its_status_writes_a_system_entry(web):
    project = create_project(web.account.id, "Bakery", status="lead")
    client = web.client("admin")
    response = post(
        client,
        f"/projects/{project.id}/edit",
        {
            "name": "Bakery Schmidt",
            "domain": "bakery.test",
            "status": "review",
            "contact_name": "Anna",
        },
    )
    assert response.status_code == 302
    project = Project.get_by_id(project.id)
    assert (project.name, project.domain, project.status) == (
        "Bakery Schmidt",
        "bakery.test",
        "review",
    )
    [system] = Entry.select().where((Entry.project == project.id) & (Entry.kind == "system"))
    assert system.subject == "Status changed from lead to review"
    protocol = client.get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert f'id="entry-{system.id}"' in protocol
    assert "Status changed from lead to review" in protocol
    # saving without a status change writes nothing more
    post(client, f"/projects/{project.id}/edit", {"name": "Bakery", "status": "review"})
    assert Entry.select().where(Entry.kind == "system").count() == 1


def test_customer_addresses_are_added_with_a_kind_and_removed(web):
    project = create_project(web.account.id, "Bakery")
    other = create_project(web.account.id, "Florist", customer_addresses=["eve@florist.test"])
    client = web.client("member")
    response = post(
        client,
        f"/projects/{project.id}/addresses",
        {"address": "Partner@Agency2.test", "kind": "partner"},
    )
    assert response.status_code == 302
    [row] = project.customer_addresses
    assert (row.address, row.kind) == ("partner@agency2.test", "partner")
    refused = post(client, f"/projects/{project.id}/addresses", {"address": "eve@florist.test"})
    assert refused.status_code == 400
    assert "already a customer address of Florist" in refused.get_data(as_text=True)
    refused = post(client, f"/projects/{project.id}/addresses", {"address": "nope"})
    assert "not a valid email address" in refused.get_data(as_text=True)
    post(client, f"/projects/{project.id}/addresses/remove", {"address": "partner@agency2.test"})
    assert project.customer_addresses.count() == 0
    assert other.customer_addresses.count() == 1
    actions = [a.action for a in Activity.select().where(Activity.project == project.id)]
    assert actions == ["project_created", "address_added", "address_removed"]


def test_the_files_tab_lists_every_attachment_of_the_protocol(web):
    project = create_project(web.account.id, "Bakery")
    first = receive(
        project,
        "Logo",
        attachments=(pdf("logo-final.pdf", 2048),),
        when=dt.datetime(2026, 11, 1, 8),
    )
    second = receive(
        project,
        "Texts",
        attachments=(pdf("about.pdf"), pdf("menu.pdf")),
        when=dt.datetime(2026, 11, 3, 8),
    )
    elsewhere = create_project(web.account.id, "Florist")
    receive(elsewhere, "Other", attachments=(pdf("secret.pdf"),))
    page = web.client("read-only").get(f"/projects/{project.id}/files").get_data(as_text=True)
    names = re.findall(r"download>([^<]+)</a>", page)
    assert names == ["about.pdf", "menu.pdf", "logo-final.pdf"]  # newest entry first
    [logo] = first.attachments
    assert f'href="/entries/{first.id}/attachments/{logo.id}"' in page
    assert f'href="/entries/{second.id}"' in page
    assert "2.0 kB" in page and "application/pdf" in page and "2026-11-01 08:00" in page


def test_projects_of_another_account_are_not_found(web):
    elsewhere = create_account("Other agency")
    theirs = create_project(elsewhere.id, "Theirs", customer_addresses=["x@theirs.test"])
    client = web.client("owner")
    for path in ("protocol", "files", "edit"):
        assert client.get(f"/projects/{theirs.id}/{path}").status_code == 404
    assert post(client, f"/projects/{theirs.id}/edit", {"name": "Mine"}).status_code == 404
    response = post(client, f"/projects/{theirs.id}/addresses/remove", {"address": "x@theirs.test"})
    assert response.status_code == 404
    assert theirs.customer_addresses.count() == 1


def test_read_only_users_cannot_create_or_edit_projects(web):
    project = create_project(web.account.id, "Bakery")
    client = web.client("read-only")
    assert client.get("/projects/new").status_code == 403
    assert client.get(f"/projects/{project.id}/edit").status_code == 403
    assert post(client, "/projects/new", {"name": "X", "status": "lead"}).status_code == 403
    protocol = client.get(f"/projects/{project.id}/protocol").get_data(as_text=True)
    assert f"/projects/{project.id}/entries/new" not in protocol
