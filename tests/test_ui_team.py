"""The team page: owners and admins add and change members; the account keeps an owner."""

from __future__ import annotations

from storage.accounts import create_account
from storage.models import User
from tests.web import PASSWORD, csrf_token, login, post


def member(email: str) -> User:
    return User.get(User.email == email)


def test_everyone_sees_the_team_with_roles_and_last_login(web):
    web.client("admin")  # logs in once
    page = web.client("member").get("/team").get_data(as_text=True)
    for role in ("owner", "admin", "member", "read-only"):
        assert f"{role}@agency.test" in page
    assert "never" in page  # the owner never logged in
    assert "Add a member" not in page  # members may not manage the team


def test_an_admin_adds_a_member_who_can_then_log_in(web):
    client = web.client("admin")
    response = post(
        client,
        "/team/members",
        {
            "email": "New.Designer@Agency.test",
            "name": "Nina",
            "role": "member",
            "password": "a good long password",
        },
    )
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "new.designer@agency.test was added" in page
    newcomer = web.app.test_client()
    login(newcomer, "new.designer@agency.test", "a good long password")
    assert "new.designer@agency.test · member" in newcomer.get("/").get_data(as_text=True)


def test_adding_a_member_refuses_bad_input_with_the_reason(web):
    client = web.client("owner")
    cases = [
        ({"email": "member@agency.test", "role": "member"}, "already a member of this account"),
        ({"email": "x@agency.test", "role": "member", "password": "short"}, "at least 10"),
        ({"email": "no-at-sign", "role": "member"}, "not a valid email address"),
        ({"email": "y@agency.test", "role": "boss"}, "role must be one of"),
    ]
    for form, reason in cases:
        response = post(client, "/team/members", {"password": PASSWORD, **form})
        assert response.status_code == 400
        assert reason in response.get_data(as_text=True)
    assert User.select().count() == 4


def test_members_and_read_only_users_may_not_manage_the_team(web):
    target = web.users["read-only"]
    for role in ("member", "read-only"):
        client = web.client(role)
        form = {"email": f"sneaky-{role}@agency.test", "role": "owner", "password": PASSWORD}
        assert post(client, "/team/members", form).status_code == 403
        assert post(client, f"/team/{target.id}/role", {"role": "admin"}).status_code == 403
        assert post(client, f"/team/{target.id}/active", {"active": "0"}).status_code == 403
    assert User.select().count() == 4
    assert member("read-only@agency.test").role == "read-only"
    assert member("read-only@agency.test").is_active


def test_an_admin_changes_roles_and_deactivates_and_reactivates_members(web):
    client = web.client("admin")
    target = web.users["member"]
    assert post(client, f"/team/{target.id}/role", {"role": "read-only"}).status_code == 302
    assert member("member@agency.test").role == "read-only"
    assert post(client, f"/team/{target.id}/active", {"active": "0"}).status_code == 302
    assert not member("member@agency.test").is_active
    locked_out = web.app.test_client()
    form = {
        "email": "member@agency.test",
        "password": PASSWORD,
        "csrf_token": csrf_token(locked_out),
    }
    assert locked_out.post("/login", data=form).status_code == 401
    assert post(client, f"/team/{target.id}/active", {"active": "1"}).status_code == 302
    assert member("member@agency.test").is_active
    login(web.app.test_client(), "member@agency.test")


def test_a_deactivated_member_is_logged_out_at_once(web):
    victim = web.client("member")
    assert victim.get("/team").status_code == 200
    post(web.client("owner"), f"/team/{web.users['member'].id}/active", {"active": "0"})
    assert victim.get("/team").status_code == 302  # back to the login page


def test_only_an_owner_touches_the_owner_role(web):
    client = web.client("admin")
    owner = web.users["owner"]
    response = post(client, f"/team/{web.users['member'].id}/role", {"role": "owner"})
    assert response.status_code == 409
    assert "Only an owner may" in response.get_data(as_text=True)
    assert post(client, f"/team/{owner.id}/role", {"role": "member"}).status_code == 409
    assert post(client, f"/team/{owner.id}/active", {"active": "0"}).status_code == 409
    form = {"email": "boss@agency.test", "role": "owner", "password": PASSWORD}
    assert post(client, "/team/members", form).status_code == 403
    assert member("owner@agency.test").role == "owner"
    assert member("owner@agency.test").is_active
    assert member("member@agency.test").role == "member"


def test_the_last_owner_can_neither_demote_nor_deactivate_themselves(web):
    client = web.client("owner")
    owner = web.users["owner"]
    response = post(client, f"/team/{owner.id}/role", {"role": "admin"})
    assert response.status_code == 409
    assert "The account needs an active owner" in response.get_data(as_text=True)
    assert post(client, f"/team/{owner.id}/active", {"active": "0"}).status_code == 409
    assert member("owner@agency.test").role == "owner"
    # with a second owner, stepping down is fine
    assert post(client, f"/team/{web.users['admin'].id}/role", {"role": "owner"}).status_code == 302
    assert post(client, f"/team/{owner.id}/role", {"role": "admin"}).status_code == 302
    assert member("owner@agency.test").role == "admin"


def test_members_of_another_account_are_not_found(web):
    other = create_account("Other agency")
    stranger = User.create(account=other.id, email="stranger@other.test", role="member")
    client = web.client("owner")
    assert post(client, f"/team/{stranger.id}/role", {"role": "admin"}).status_code == 404
    assert post(client, f"/team/{stranger.id}/active", {"active": "0"}).status_code == 404
    assert post(client, f"/team/{'9' * 30}/active", {"active": "0"}).status_code == 404
    assert "stranger@other.test" not in client.get("/team").get_data(as_text=True)
    assert User.get_by_id(stranger.id).is_active
