"""The UI of mail to customers: the form with templates, errors, templates CRUD, settings."""

from __future__ import annotations

from domain.tokens import create_api_token
from postroom.mail_templates import STARTER_TEMPLATES
from storage.models import (
    Account,
    AccountSmtp,
    Entry,
    MailTemplate,
    OutboundMessage,
)
from storage.outbound import save_template
from tests.web import post


def page(response) -> str:
    return response.get_data(as_text=True)


def test_the_project_header_links_to_a_message_to_the_customer(web, bakery):
    member = web.client("member")
    header = page(member.get(f"/projects/{bakery.id}/protocol"))
    assert f'href="/projects/{bakery.id}/messages/new"' in header
    assert "Message to customer" in header
    assert "Message to customer" not in page(
        web.client("read-only").get(f"/projects/{bakery.id}/protocol")
    )


def test_a_template_prefills_the_form_rendered_for_the_project(web, bakery):
    template = save_template(
        web.account.id,
        "Review",
        "{{ website_name }}: please review",
        "Hello {{ contact_person }},\nsee {{ domain }}.\n{{ sender_name }}",
    )
    save_template(web.account.id, "Invoice", "Your invoice", "Attached.")
    member = web.client("member")
    form = page(member.get(f"/projects/{bakery.id}/messages/new"))
    assert '<option value="anna@bakery.example" selected>' in form
    assert "Review" in form and "Invoice" in form
    found = page(member.get(f"/projects/{bakery.id}/messages/new?template_q=review"))
    assert "Review" in found and "Invoice" not in found
    filled = page(member.get(f"/projects/{bakery.id}/messages/new?template={template.id}"))
    assert 'value="Bakery Miller: please review"' in filled
    assert "Hello Anna Miller,\nsee bakery.example.\nMember</textarea>" in filled  # the member


def test_template_errors_are_shown_before_sending(web, bakery):
    broken = MailTemplate.create(
        account=web.account.id, name="Typo", subject="Hi", body="Hello {{ contact_persn }}"
    )
    member = web.client("member")
    response = member.get(f"/projects/{bakery.id}/messages/new?template={broken.id}")
    assert response.status_code == 200
    assert "unknown variable" in page(response) and "contact_persn" in page(response)
    assert 'id="template-error"' in page(response)


def test_a_bad_recipient_is_shown_and_nothing_is_queued(web, bakery):
    member = web.client("member")
    path = f"/projects/{bakery.id}/messages/new"
    response = post(
        member,
        path,
        {"to": "", "to_other": "not an address", "subject": "Hi", "body": "Text"},
        token_from=path,
    )
    assert response.status_code == 400
    assert "not an email address" in page(response)
    assert 'value="Hi"' in page(response)  # what was typed stays
    assert OutboundMessage.select().count() == 0


def test_a_message_is_queued_and_the_entry_shows_its_state(web, bakery):
    member = web.client("member")
    path = f"/projects/{bakery.id}/messages/new"
    response = post(
        member,
        path,
        {
            "to": "anna@bakery.example",
            "to_other": "",
            "subject": "Photos",
            "body": "Hello **Anna**",
        },
        token_from=path,
    )
    assert response.status_code == 302
    entry = Entry.get(Entry.kind == "outbound")
    assert response.headers["Location"].endswith(
        f"/projects/{bakery.id}/protocol?entry={entry.id}#entry-{entry.id}"
    )
    protocol = page(member.get(response.headers["Location"]))
    assert "Mail to anna@bakery.example queued" in protocol
    detail = page(member.get(f"/entries/{entry.id}"))
    assert 'id="outbound-state"' in detail and "<strong>Queued</strong>" in detail
    assert entry.status == "done" and entry.author_id == web.users["member"].id


def test_read_only_members_cannot_open_or_send_the_form_nor_edit_templates(web, bakery):
    reader = web.client("read-only")
    assert reader.get(f"/projects/{bakery.id}/messages/new").status_code == 403
    assert reader.post(f"/projects/{bakery.id}/messages/new", data={}).status_code in (400, 403)
    assert reader.get("/templates").status_code == 200
    assert reader.get("/templates/new").status_code == 403
    assert reader.get("/settings").status_code == 403
    token = create_api_token(web.users["read-only"])
    answer = web.app.test_client().post(
        f"/api/v1/projects/{bakery.id}/messages",
        headers={"Authorization": f"Bearer {token}"},
        json={"to": "anna@bakery.example", "subject": "Hi", "body": "x"},
    )
    assert answer.status_code == 403
    assert OutboundMessage.select().count() == 0


def test_templates_are_created_searched_edited_copied_and_deleted(web):
    member = web.client("member")
    response = post(
        member,
        "/templates/new",
        {
            "name": "Ask for logo",
            "subject": "Logo for {{ website_name }}",
            "body": "Send the logo.",
        },
        token_from="/templates/new",
    )
    assert response.status_code == 302
    template = MailTemplate.get(MailTemplate.name == "Ask for logo")
    save_template(web.account.id, "Invoice", "Your invoice", "Attached.")
    listing = page(member.get("/templates?q=logo"))
    assert "Ask for logo" in listing and "Invoice" not in listing
    assert "Invoice" in page(member.get("/templates?q=INVOICE"))  # subject words count too

    edit = f"/templates/{template.id}/edit"
    refused = post(
        member,
        edit,
        {"name": "Ask for logo", "subject": "Logo", "body": "Hi {{ nobody }}"},
        token_from=edit,
    )
    assert refused.status_code == 400 and "unknown variable" in page(refused)
    assert MailTemplate.get_by_id(template.id).body == "Send the logo."
    editor = page(member.get(edit))
    for name in ("website_name", "invitation_link", "signature"):  # listed under the editor
        assert f"{{{{ {name} }}}}" in editor
    assert (
        post(
            member,
            edit,
            {"name": "Logo", "subject": "Logo for {{ website_name }}", "body": "Send it."},
            token_from=edit,
        ).status_code
        == 302
    )
    assert MailTemplate.get_by_id(template.id).name == "Logo"

    copied = post(member, f"/templates/{template.id}/copy", token_from=edit)
    assert copied.status_code == 302
    copy = MailTemplate.get(MailTemplate.name == "Copy of Logo")
    assert (copy.subject, copy.body) == ("Logo for {{ website_name }}", "Send it.")
    assert post(member, f"/templates/{template.id}/delete", token_from=edit).status_code == 302
    assert MailTemplate.get_or_none(MailTemplate.id == template.id) is None
    assert MailTemplate.get_or_none(MailTemplate.id == copy.id) is not None


def test_templates_of_another_account_are_not_found(web):
    from storage.accounts import create_account

    theirs = save_template(create_account("Other").id, "Secret", "S", "B")
    member = web.client("member")
    assert member.get(f"/templates/{theirs.id}/edit").status_code == 404
    assert "Secret" not in page(member.get("/templates"))
    assert post(member, f"/templates/{theirs.id}/delete").status_code == 404


def test_settings_store_the_own_server_and_never_show_its_password(web):
    admin = web.client("admin")
    assert web.client("member").get("/settings").status_code == 403
    form = {
        # an address on the internet: a name is looked up when saved, and nothing resolves
        # here (no connection is made by saving)
        "host": "1.2.3.4",
        "port": "587",
        "security": "starttls",
        "username": "mailer",
        "password": "s3cret-Pa55word",
        "from_address": "Hi@Agency.test",
        "from_name": "Agency",
    }
    assert post(admin, "/settings/smtp", form, token_from="/settings").status_code == 302
    stored = AccountSmtp.get(AccountSmtp.account == web.account.id)
    assert (stored.password, stored.from_address) == ("s3cret-Pa55word", "hi@agency.test")
    shown = page(admin.get("/settings"))
    assert "s3cret-Pa55word" not in shown and "1.2.3.4" in shown
    assert "leave empty to keep it" in shown

    kept = post(
        admin, "/settings/smtp", {**form, "password": "", "port": "2525"}, token_from="/settings"
    )
    assert kept.status_code == 302
    stored = AccountSmtp.get(AccountSmtp.account == web.account.id)
    assert (stored.password, stored.port) == ("s3cret-Pa55word", 2525)

    bad = post(
        admin,
        "/settings/smtp",
        {**form, "from_name": "A\r\nBcc: x@y.test", "port": "0"},
        token_from="/settings",
    )
    assert bad.status_code == 400
    assert "line break" in page(bad) and "1 to 65535" in page(bad)
    assert "s3cret-Pa55word" not in page(bad)

    assert (
        post(
            admin, "/settings/signature", {"signature": "Agency · Hamburg"}, token_from="/settings"
        ).status_code
        == 302
    )
    assert Account.get_by_id(web.account.id).signature == "Agency · Hamburg"
    assert post(admin, "/settings/smtp/remove", token_from="/settings").status_code == 302
    assert AccountSmtp.select().count() == 0


def test_the_signature_starts_a_new_message(web, bakery):
    Account.update(signature="-- \nAgency").where(Account.id == web.account.id).execute()
    form = page(web.client("member").get(f"/projects/{bakery.id}/messages/new"))
    assert "\n\n-- \nAgency</textarea>" in form


def test_the_setup_page_gives_the_new_account_its_starter_templates(storage_db, tmp_path):
    from admin_ui import create_app
    from domain.tokens import setup_token
    from postroom.config import load_settings
    from tests.web import csrf_token

    config = tmp_path / "postroom.toml"
    config.write_text("")
    client = create_app(load_settings(config), testing=True).test_client()
    path = f"/setup?token={setup_token()}"
    response = client.post(
        path,
        data={
            "agency": "Pixel",
            "email": "owner@pixel.test",
            "password": "long enough password",
            "csrf_token": csrf_token(client, path),
        },
    )
    assert response.status_code == 302
    names = {t.name for t in MailTemplate.select()}
    assert names == {name for name, _, _ in STARTER_TEMPLATES}
    listing = page(client.get("/templates"))
    assert all(name in listing for name in names)


def test_received_mail_offers_an_answer_that_is_threaded_with_it(web, bakery):
    from tests.mail import message
    from tests.test_api import deliver

    [question] = deliver(web.account, message("Prices?", sender="Anna <anna@bakery.example>"))
    member = web.client("member")
    detail = page(member.get(f"/entries/{question.id}"))
    answer_link = f"/projects/{bakery.id}/messages/new?answer={question.id}"
    assert answer_link in detail
    assert answer_link not in page(web.client("read-only").get(f"/entries/{question.id}"))
    form = page(member.get(answer_link))
    assert 'value="Re: Prices?"' in form and f'name="answer" value="{question.id}"' in form
    path = f"/projects/{bakery.id}/messages/new"
    data = {
        "answer": str(question.id),
        "to": "anna@bakery.example",
        "to_other": "",
        "subject": "Re: Prices?",
        "body": "Here they are.",
    }
    assert post(member, path, data, token_from=path).status_code == 302
    sent = Entry.get(Entry.kind == "outbound")
    assert sent.in_reply_to == question.message_id
