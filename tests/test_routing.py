"""Mail is filed under the right project, or queued as unassigned with candidates and a reason."""

from __future__ import annotations

from tests.mail import message


def test_mail_from_a_stored_customer_address_in_any_case_lands_in_that_project(daemon):
    account = daemon.account["id"]
    project = daemon.create_project(account, "Bakery Miller", "Anna.Miller@Bakery.test")
    daemon.send(message("New opening hours", sender="Anna <ANNA.MILLER@bakery.TEST>"))
    [entry] = daemon.wait_for_entries(1)
    assert entry["project_id"] == project["id"]
    assert entry["route_reason"].startswith("sender:")


def test_mail_from_an_unknown_sender_is_unassigned(daemon):
    daemon.create_project(daemon.account["id"], "Bakery Miller", "anna@bakery.test")
    daemon.send(message("Do you build web shops?", sender="stranger@elsewhere.test"))
    [entry] = daemon.wait_for_entries(1)
    assert entry["project_id"] is None
    assert entry["route_reason"].startswith("unassigned:")
    assert entry["candidates"] == []
    assert daemon.entries("--unassigned")[0]["id"] == entry["id"]


def test_a_reply_to_a_stored_message_id_from_an_unknown_address_lands_in_that_project(daemon):
    project = daemon.create_project(daemon.account["id"], "Bakery Miller", "anna@bakery.test")
    first = message("Texts for the homepage", sender="anna@bakery.test")
    message_id = first.split(b"Message-ID: <")[1].split(b">")[0].decode()
    daemon.send(first)
    daemon.wait_for_entries(1)
    reply = message(
        "Re: Texts for the homepage",
        sender="Colleague <bob@other-provider.test>",
        headers={"In-Reply-To": f"<{message_id}>", "References": f"<{message_id}>"},
    )
    daemon.send(reply)
    entries = daemon.wait_for_entries(2)
    replied = next(e for e in entries if e["subject"].startswith("Re:"))
    assert replied["project_id"] == project["id"]
    assert replied["route_reason"].startswith("thread:")


def test_an_address_on_two_projects_is_unassigned_with_both_as_candidates(daemon):
    account = daemon.account["id"]
    shop = daemon.create_project(account, "Miller shop", "anna@bakery.test")
    blog = daemon.create_project(account, "Miller blog", "anna@bakery.test")
    daemon.send(message("Which site?", sender="anna@bakery.test"))
    [entry] = daemon.wait_for_entries(1)
    assert entry["project_id"] is None
    assert sorted(entry["candidates"]) == sorted([shop["id"], blog["id"]])
    assert "2 projects" in entry["route_reason"]


def test_a_sender_at_a_projects_domain_is_unassigned_with_that_project_as_candidate(daemon):
    project = daemon.create_project(daemon.account["id"], "Bakery", domain="bakery.test")
    daemon.send(message("Hello from the bakery", sender="new.colleague@bakery.test"))
    [entry] = daemon.wait_for_entries(1)
    assert entry["project_id"] is None
    assert entry["candidates"] == [project["id"]]


def test_mail_to_a_project_reply_address_lands_in_that_project(daemon):
    project = daemon.create_project(daemon.account["id"], "Bakery")
    daemon.send(message("Answer", sender="someone@else.test"), to=[project["reply_address"]])
    [entry] = daemon.wait_for_entries(1)
    assert entry["project_id"] == project["id"]
    assert entry["route_reason"].startswith("project_address:")


def test_a_guessed_project_reply_address_is_refused(daemon):
    project = daemon.create_project(daemon.account["id"], "Bakery")
    local, domain = project["reply_address"].split("@")
    guessed = local[:-4] + "aaaa@" + domain
    with daemon.smtp() as client:
        client.mail("a@b.test")
        assert client.rcpt(guessed)[0] == 550


def test_auto_replies_and_bounces_are_marked(daemon):
    daemon.send(message("Out of office", headers={"Auto-Submitted": "auto-replied"}))
    [entry] = daemon.wait_for_entries(1)
    assert entry["auto_submitted"] is True
