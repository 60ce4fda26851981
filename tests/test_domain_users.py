"""The domain's rules for users and roles, tokens, accounts and their settings, templates and
notification settings (domain/users.py, tokens.py, accounts.py, templates.py, notifications.py),
in process on each backend; and one behaviour check that the CLI and the UI refuse the same
bad member with the same words (the API offers no team changes)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from domain import accounts, notifications, templates, tokens, users
from domain.addresses import invalid_message
from domain.errors import Conflict, Forbidden, Invalid, NotFound
from postroom.auth import check_login
from storage import notifications as notification_store
from storage.models import (
    Account,
    ApiToken,
    MailTemplate,
    Notification,
    Project,
    User,
    WebSession,
    utcnow,
)
from tests.web import PASSWORD, post

STARTERS = (("Hello", "Hello {{ website_name }}", "Hi,\n\nsee you.\n"),)
BAD_ROLE = "role must be one of owner, admin, member, read-only"


@pytest.fixture
def team(storage_db):
    """An account with an owner, an admin and a member."""
    account = accounts.create_account("Agency", STARTERS)
    made = {
        role: users.create_user(account.id, f"{role}@agency.test", role, PASSWORD, name=role)
        for role in ("owner", "admin", "member")
    }
    return account, made


def reread(user: User) -> User:
    return User.get_by_id(user.id)


# --- users and roles ---------------------------------------------------------------------------
def test_a_member_is_stored_with_the_address_lower_cased_and_can_log_in(team):
    account, _ = team
    created = users.create_user(account.id, "  Nina@Agency.TEST ", "read-only", PASSWORD, "Nina")
    stored = reread(created)
    assert (stored.email, stored.role, stored.name) == ("nina@agency.test", "read-only", "Nina")
    assert check_login("NINA@agency.test", PASSWORD).id == created.id
    assert users.shown_name(stored) == "Nina"
    assert users.shown_name(User(email="x@agency.test")) == "x@agency.test"


@pytest.mark.parametrize(
    ("email", "role", "password", "name", "refusal"),
    [
        ("no-at-sign", "member", PASSWORD, "", invalid_message("no-at-sign")),
        ("a b@agency.test", "member", PASSWORD, "", invalid_message("a b@agency.test")),
        ("x@agency.test", "boss", PASSWORD, "", BAD_ROLE),
        ("x@agency.test", "member", "short", "", "at least 10 characters"),
        ("x@agency.test", "member", "Password12", "", "common passwords"),
        ("x@agency.test", "member", PASSWORD, "Nina\nBcc: x", "must be one line"),
    ],
)
def test_one_rule_per_concept_refuses_a_member_and_stores_nothing(
    team, email, role, password, name, refusal
):
    account, _ = team
    before = User.select().count()
    with pytest.raises(Invalid) as refused:
        users.create_user(account.id, email, role, password, name)
    assert refusal in str(refused.value)
    assert User.select().count() == before


def test_an_address_is_a_member_once_per_account(team, storage_db):
    account, _ = team
    with pytest.raises(Conflict, match="already a member of this account"):
        users.create_user(account.id, "MEMBER@agency.test", "member", PASSWORD)
    other = accounts.create_account("Other agency")
    assert users.create_user(other.id, "member@agency.test", "member", PASSWORD).id


def test_only_an_owner_hands_out_or_touches_the_owner_role(team):
    account, made = team
    admin, member, owner = made["admin"], made["member"], made["owner"]
    with pytest.raises(Forbidden, match="Only an owner"):
        users.create_user(account.id, "boss@agency.test", "owner", PASSWORD, by=admin)
    with pytest.raises(Forbidden, match="Only an owner"):
        users.change_role(account.id, member.id, "owner", by=admin)
    with pytest.raises(Forbidden, match="Only an owner"):
        users.set_active(account.id, owner.id, False, by=admin)
    with pytest.raises(Forbidden):
        users.change_role(account.id, admin.id, "member", by=member)
    with pytest.raises(Invalid, match=BAD_ROLE):
        users.change_role(account.id, member.id, "boss", by=owner)
    assert reread(member).role == "member" and reread(owner).is_active
    users.change_role(account.id, member.id, "admin", by=admin)
    users.change_role(account.id, admin.id, "owner", by=owner)
    assert reread(member).role == "admin" and reread(admin).role == "owner"


def test_no_change_leaves_an_account_without_an_active_owner(team):
    account, made = team
    owner = made["owner"]
    with pytest.raises(Conflict, match="needs an active owner"):
        users.change_role(account.id, owner.id, "admin", by=owner)
    with pytest.raises(Conflict, match="needs an active owner"):
        users.set_active(account.id, owner.id, False)  # the operator is held to it too
    users.change_role(account.id, made["admin"].id, "owner", by=owner)
    users.change_role(account.id, owner.id, "member", by=owner)
    assert reread(owner).role == "member"


def test_members_of_another_account_are_not_found(team):
    account, made = team
    other = accounts.create_account("Other agency")
    stranger = users.create_user(other.id, "boss@other.test", "owner", PASSWORD)
    for change in (
        lambda: users.change_role(account.id, stranger.id, "member", by=made["owner"]),
        lambda: users.set_active(account.id, stranger.id, False, by=made["owner"]),
        lambda: users.change_role(account.id, 2**31, "member", by=made["owner"]),
    ):
        with pytest.raises(NotFound):
            change()
    assert reread(stranger).role == "owner" and reread(stranger).is_active
    with pytest.raises(Forbidden):  # an owner acts in their own account only
        users.create_user(other.id, "mole@agency.test", "admin", PASSWORD, by=made["owner"])
    assert users.find_user("mole@agency.test") is None


def test_a_new_password_or_deactivation_ends_every_session_and_token(team):
    account, made = team
    member = made["member"]
    tokens.create_api_token(member, "ci")
    WebSession.create(token_hash="x" * 64, data="{}", user=member.id, auth_generation=0)
    users.set_password(member, "plum cake at nine")
    assert reread(member).auth_generation == 1
    assert not ApiToken.select().where(ApiToken.user == member.id).exists()
    assert not WebSession.select().where(WebSession.user == member.id).exists()
    assert check_login("member@agency.test", "plum cake at nine") is not None

    tokens.create_api_token(member, "ci")
    users.set_active(account.id, member.id, False, by=made["admin"])
    assert not reread(member).is_active and reread(member).auth_generation == 2
    assert not ApiToken.select().where(ApiToken.user == member.id).exists()
    assert check_login("member@agency.test", "plum cake at nine") is None


def test_changing_the_own_password_needs_the_current_one(team):
    _, made = team
    member = made["member"]
    with pytest.raises(users.WrongPassword, match="current password is wrong"):
        users.change_own_password(member, "not it at all", "plum cake at nine")
    with pytest.raises(Invalid, match="at least 10"):
        users.change_own_password(member, PASSWORD, "short")
    assert reread(member).auth_generation == 0
    generation = users.change_own_password(member, PASSWORD, "plum cake at nine")
    assert generation == reread(member).auth_generation == 1


def test_what_each_role_may_do(team):
    _, made = team
    read_only = User(role="read-only")
    assert users.may_delete_entries(made["admin"]) and not users.may_delete_entries(made["member"])
    assert users.may_manage_team(made["owner"]) and not users.may_manage_team(made["member"])
    assert not users.may_change_anything(read_only) and users.may_change_anything(made["member"])
    assert "owner" in users.roles_given_by(made["owner"])
    assert "owner" not in users.roles_given_by(made["admin"])


def test_the_password_rule_whatever_the_case():
    assert "at least 10 characters" in users.password_problem("123456789")
    assert "common passwords" in users.password_problem(" PASSWORD12 ")
    assert users.password_problem("plum cake at nine") is None
    assert len(users.common_passwords()) > 19_000


# --- tokens ------------------------------------------------------------------------------------
def test_a_token_works_until_revoked_and_only_its_hash_is_stored(team):
    _, made = team
    member = made["member"]
    secret = tokens.create_api_token(member, " laptop ", expires_days=30)
    row = ApiToken.get(ApiToken.user == member.id)
    assert secret.startswith("prt_") and secret not in row.token_hash and row.name == "laptop"
    assert tokens.user_for_token(secret).id == member.id
    assert [t.id for t in tokens.api_tokens(user_id=member.id)] == [row.id]
    tokens.revoke_own_api_token(member, row.id)
    assert tokens.user_for_token(secret) is None
    with pytest.raises(NotFound, match=f"no API token {row.id}"):
        tokens.revoke_own_api_token(member, row.id)


@pytest.mark.parametrize(
    ("name", "days", "refusal"),
    [("x" * 101, None, "up to 100 printable"), ("a\tb", None, "printable"), ("ok", 0, "1 to 3650")],
)
def test_a_token_name_and_expiry_follow_their_rules(team, name, days, refusal):
    with pytest.raises(Invalid, match=refusal):
        tokens.create_api_token(team[1]["member"], name, expires_days=days)
    assert ApiToken.select().count() == 0


def test_who_may_revoke_whose_token(team):
    _, made = team
    owner_token = tokens.create_api_token(made["owner"], "owner's")
    member_token = tokens.create_api_token(made["member"], "member's")
    owner_row = ApiToken.get(ApiToken.user == made["owner"].id)
    member_row = ApiToken.get(ApiToken.user == made["member"].id)
    other = accounts.create_account("Other agency")
    stranger = users.create_user(other.id, "boss@other.test", "owner", PASSWORD)
    with pytest.raises(NotFound):
        tokens.revoke_api_token(member_row.id, by=stranger)  # another account's: not there
    with pytest.raises(NotFound):
        tokens.revoke_api_token(owner_row.id, by=made["member"])  # not a manager
    with pytest.raises(NotFound):
        tokens.revoke_own_api_token(made["admin"], member_row.id)  # the profile: own only
    with pytest.raises(Forbidden, match="Only an owner"):
        tokens.revoke_api_token(owner_row.id, by=made["admin"])
    assert tokens.user_for_token(owner_token) and tokens.user_for_token(member_token)
    tokens.revoke_api_token(member_row.id, by=made["admin"])
    tokens.revoke_api_token(owner_row.id)  # the operator (CLI)
    assert ApiToken.select().count() == 0


# --- accounts, setup, settings -----------------------------------------------------------------
def test_an_account_gets_its_starter_templates_and_needs_a_name(storage_db):
    account = accounts.create_account("  Agency Lind ", STARTERS)
    assert Account.get_by_id(account.id).name == "Agency Lind"
    assert [t.name for t in MailTemplate.select()] == ["Hello"]
    for blank in ("", "   ", "Two\nlines", "x" * 201):
        with pytest.raises(Invalid):
            accounts.create_account(blank)
    assert Account.select().count() == 1


def test_the_setup_token_is_spent_once_and_kept_when_setup_is_refused(storage_db):
    token = tokens.setup_token()
    assert token and tokens.check_setup_token(token)
    with pytest.raises(Invalid, match="common passwords"):
        accounts.set_up(token, "Agency", "me@agency.test", "password12", STARTERS)
    with pytest.raises(Invalid, match="Name your agency"):
        accounts.set_up(token, " ", "me@agency.test", PASSWORD, STARTERS)
    assert Account.select().count() == 0 and tokens.check_setup_token(token)
    account, owner = accounts.set_up(token, "Agency", "Me@Agency.test", PASSWORD, STARTERS)
    assert (owner.role, owner.email, owner.account_id) == ("owner", "me@agency.test", account.id)
    assert MailTemplate.select().where(MailTemplate.account == account.id).count() == 1
    assert tokens.setup_token() is None
    with pytest.raises(Conflict, match="set up already"):
        accounts.set_up(token, "Again", "you@agency.test", PASSWORD, STARTERS)
    assert Account.select().count() == 1


ASCII_ONLY = "The user name and the password may hold only ASCII characters."


def good_smtp(**changes) -> accounts.SmtpSettings:
    values = {
        "host": "smtp.agency.example",
        "port": "587",
        "security": "starttls",
        "username": "mailer",
        "from_address": "Hello@Agency.example",
        "from_name": "Agency",
        "password": "secret",
    }
    return accounts.SmtpSettings(**{**values, **changes})


def test_the_outgoing_server_is_stored_only_when_every_rule_holds(team):
    account, made = team
    cases = [
        (good_smtp(host="bad host!"), "The server must be a host name or an IP address."),
        (good_smtp(port="70000"), "The port must be a number from 1 to 65535."),
        # digits that int() will not read, or reads slowly: refused, never a ValueError
        (good_smtp(port="\u00b2"), "The port must be a number from 1 to 65535."),
        (good_smtp(port="5" * 5000), "The port must be a number from 1 to 65535."),
        (good_smtp(port="\u0665\u0668\u0667"), "The port must be a number from 1 to 65535."),
        (good_smtp(security="ssl3"), "Choose how the connection is secured."),
        (good_smtp(from_address="nobody"), "The sender address must be an email address."),
        (good_smtp(from_name="x" * 201), "The sender name is too long."),
        (good_smtp(password="a\rb"), "No field may contain a line break."),
        (good_smtp(password="x" * 256), "The password is too long."),
        (good_smtp(password="geheimß"), ASCII_ONLY),
        (good_smtp(username="müller"), ASCII_ONLY),
    ]
    for smtp, problem in cases:
        with pytest.raises(accounts.SmtpInvalid) as refused:
            accounts.save_smtp(account.id, smtp, user_id=made["admin"].id)
        assert refused.value.problems == [problem]
    assert accounts.smtp_problems(good_smtp(), hidden_line_break=lambda text: "=?" in text) == []

    def refuse_port(host: str, port: int) -> None:
        raise ValueError(f"port {port} is not allowed")

    with pytest.raises(accounts.SmtpInvalid, match=r"Port 587 is not allowed\."):
        accounts.save_smtp(account.id, good_smtp(), check_host=refuse_port)
    stored = accounts.save_smtp(account.id, good_smtp(host="[192.0.2.1]"), check_host=print)
    assert (stored.host, stored.port, stored.from_address) == (
        "192.0.2.1",
        587,
        "hello@agency.example",
    )
    kept = accounts.save_smtp(account.id, good_smtp(password=""))
    assert kept.password == "secret"
    accounts.remove_smtp(account.id, user_id=made["admin"].id)


def test_the_signature_is_trimmed_and_bounded(team):
    account, _ = team
    assert accounts.set_signature(account.id, " Agency\r\nweb design \n") == "Agency\nweb design"
    assert Account.get_by_id(account.id).signature == "Agency\nweb design"
    with pytest.raises(Invalid, match="at most 5000 characters"):
        accounts.set_signature(account.id, "x" * 5001)
    assert Account.get_by_id(account.id).signature == "Agency\nweb design"


# --- templates ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "subject", "body", "refusal"),
    [
        (" ", "Hi", "Text", "Give the template a name."),
        ("x" * 201, "Hi", "Text", "The name is too long (at most 200 characters)."),
        ("N", "x" * 501, "Text", "The subject is too long (at most 500 characters)."),
        ("N", "Hi", "x" * 20_001, "The text is too long (at most 20,000 characters)."),
        ("N", "Hi\nBcc: x", "Text", "The subject must be one line."),
        ("N", " ", "Text", "A template needs a subject and a text."),
        ("N", "Hi", "{% for %}", "the language says no"),
    ],
)
def test_a_template_is_stored_only_when_every_rule_holds(team, name, subject, body, refusal):
    account, _ = team

    def language(subject: str, body: str) -> None:
        if "{%" in body:
            raise ValueError("the language says no")

    with pytest.raises(Invalid) as refused:
        templates.save_template(account.id, name, subject, body, check_language=language)
    assert str(refused.value) == refusal
    assert MailTemplate.select().count() == 1  # the starter


def test_templates_are_saved_copied_and_deleted_within_their_account(team):
    account, _ = team
    saved = templates.save_template(account.id, " Offer ", " Our offer ", "Text\r\nmore")
    assert (saved.name, saved.subject, saved.body) == ("Offer", "Our offer", "Text\nmore")
    changed = templates.save_template(account.id, "Offer 2", "Offer", "Text", saved.id)
    assert changed.id == saved.id and MailTemplate.get_by_id(saved.id).name == "Offer 2"
    copy = templates.copy_template(account.id, saved.id)
    assert copy.name == "Copy of Offer 2"
    other = accounts.create_account("Other agency")
    for change in (
        lambda: templates.copy_template(other.id, saved.id),
        lambda: templates.delete_template(other.id, saved.id),
        lambda: templates.save_template(other.id, "Mine", "Hi", "Text", saved.id),
    ):
        with pytest.raises(NotFound):
            change()
    templates.delete_template(account.id, saved.id)
    assert MailTemplate.get_or_none(MailTemplate.id == saved.id) is None


# --- notification settings ---------------------------------------------------------------------
def test_preferences_following_and_read_marks_are_the_members_own(team):
    account, made = team
    member, admin = made["member"], made["admin"]
    project = Project.create(account=account.id, name="Bakery", reply_token="t")
    chosen = {"mention": notification_store.Preference(in_app=False, email=True, digest=True)}
    notifications.save_preferences(member, chosen)
    assert notification_store.preferences_of([member.id])[member.id]["mention"] == chosen["mention"]
    with pytest.raises(Invalid, match="no such event type"):
        notifications.save_preferences(member, {"gossip": notification_store.Preference()})

    notifications.set_following(member, project.id, True)
    assert notification_store.is_following(project.id, member.id)
    other = accounts.create_account("Other agency")
    foreign = Project.create(account=other.id, name="Theirs", reply_token="u")
    with pytest.raises(NotFound):
        notifications.set_following(member, foreign.id, True)
    notifications.set_following(member, project.id, False)
    assert not notification_store.is_following(project.id, member.id)

    now = utcnow()
    mine = Notification.create(user=member.id, event_type="mention", created_at=now)
    theirs = Notification.create(user=admin.id, event_type="mention", created_at=now)
    with pytest.raises(NotFound):
        notifications.mark_read(member, theirs.id)
    assert notifications.mark_read(member, mine.id) == 1
    assert Notification.get_by_id(mine.id).read_at is not None
    assert Notification.get_by_id(theirs.id).read_at is None
    assert notifications.mark_read(admin) == 1


# --- the same refusal from every entry point ---------------------------------------------------
@pytest.mark.parametrize(
    ("email", "role", "refusal"),
    [("no-at-sign", "member", invalid_message("no-at-sign")), ("x@agency.test", "boss", BAD_ROLE)],
)
def test_the_cli_and_the_ui_refuse_a_bad_member_with_the_same_words(
    web, db_url, tmp_path, email, role, refusal
):
    from postroom.cli import main

    config = tmp_path / "cli.toml"
    config.write_text(f'[storage]\nurl = "{db_url}"\n[ingest]\ndomains = ["in.example"]\n')
    args = ["-c", str(config), "user", "create", email, "--account", str(web.account.id)]
    umask = os.umask(0o077)  # the command sets its own; this process keeps the one it had
    try:
        result = CliRunner().invoke(main, [*args, "--role", role, "--password-stdin"], PASSWORD)
    finally:
        os.umask(umask)
    assert result.exit_code == 1, result.output
    assert f"Error: {refusal}\n" in result.output

    form = {"email": email, "role": role, "name": "", "password": PASSWORD}
    response = post(web.client("owner"), "/team/members", form, token_from="/team")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert refusal.replace("'", "&#39;") in page
    assert User.select().count() == 4
