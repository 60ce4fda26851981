"""The API's assign says how many more mails from the sender it filed (issue 17)."""

from __future__ import annotations

from domain.projects import create_project
from storage.models import Entry
from tests.mail import message
from tests.test_api import api_as, deliver


def test_assign_and_remember_says_how_many_more_from_the_sender_were_filed(web):
    member = api_as(web, "member")
    bakery = create_project(web.account.id, "Bakery Miller")
    mails = deliver(
        web.account,
        *(message(f"Question {n}", sender="Anna <anna@bakery.example>") for n in range(5)),
        message("Other", sender="tom@elsewhere.example"),
    )
    first, *rest, other = mails
    response = member.post(
        f"/entries/{first.id}/assign", json={"project_id": bakery.id, "remember_sender": True}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["project_id"], body["also_filed"]) == (first.id, bakery.id, 4)
    assert all(Entry.get_by_id(m.id).project_id == bakery.id for m in rest)
    assert Entry.get_by_id(other.id).project_id is None
    response = member.post(f"/entries/{other.id}/assign", json={"project_id": bakery.id})
    assert response.get_json()["also_filed"] == 0


def test_the_api_document_describes_also_filed(web):
    document = web.app.test_client().get("/api/v1/openapi.json").get_json()
    assigned = document["components"]["schemas"]["EntryAssigned"]
    assert "also_filed" in assigned["required"]
    assert "sender" in assigned["properties"]["also_filed"]["description"]
    operation = document["paths"]["/entries/{entry_id}/assign"]["post"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/EntryAssigned")
