"""Every page of the app has the structure assistive technology finds its way by (issue 19).

In-process, without a browser: the HTML of every GET page (tests/app_pages.py) as an owner and
as a read-only member, the login page, the setup page of a fresh installation and an error page
is parsed and checked for one h1, the landmarks (header, nav when logged in, main#main), the
skip link first, a name for every form control, references (aria-describedby,
aria-labelledby, label for) that point at ids on the page, unique ids, a title on every frame,
a text alternative or aria-hidden on every image and icon, no positive tabindex.

Then each form that can refuse what was sent is sent something it refuses: the field gets
aria-invalid="true" and its aria-describedby names the element that says why (a hint it had
stays named too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from tests.app_pages import html_pages, seed
from tests.web import PASSWORD, csrf_token, post

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
NOT_LABELLED = {"hidden", "submit", "button", "reset", "image"}  # named by value, or not shown


@dataclass(eq=False)
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None = None
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        """The text inside, whitespace collapsed."""
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def ids(self, name: str) -> list[str]:
        """The ids an ID-reference list attribute names (aria-describedby="a b")."""
        return self.attrs.get(name, "").split()

    def __repr__(self) -> str:
        shown = " ".join(f'{k}="{v}"' for k, v in self.attrs.items())
        return f"<{self.tag} {shown}>"


class Page(HTMLParser):
    """The page as a tree of Elements (elements left open are closed by their parent's end)."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.elements: list[Element] = []
        self._open = [self.root]
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {k: v or "" for k, v in attrs}, parent=self._open[-1])
        self._open[-1].children.append(element)
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self._open.pop()

    def handle_endtag(self, tag):
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data):
        self._open[-1].children.append(data)

    def all(self, *tags: str) -> list[Element]:
        return [e for e in self.elements if e.tag in tags]

    def by_id(self) -> dict[str, Element]:
        return {e.attrs["id"]: e for e in self.elements if "id" in e.attrs}


def accessible_name_problem(control: Element, page: Page) -> str | None:
    """Why a form control has no accessible name (None: it has one)."""
    if control.attrs.get("aria-label", "").strip():
        return None
    ids = page.by_id()
    if control.attrs.get("aria-labelledby"):
        named = [ids.get(i) for i in control.ids("aria-labelledby")]
        return None if all(named) and any(n.text() for n in named) else "aria-labelledby is empty"
    if any(a.tag == "label" for a in control.ancestors()):
        return None
    if control.attrs.get("id") and any(
        label.attrs.get("for") == control.attrs["id"] and label.text()
        for label in page.all("label")
    ):
        return None
    if control.attrs.get("title", "").strip():
        return None
    return "no label, aria-label or aria-labelledby"


def structure_problems(html: str, *, logged_in: bool) -> list[str]:
    """What keeps a page from being found one's way around by keyboard and screen reader."""
    page = Page(html)
    problems = []
    h1 = page.all("h1")
    if len(h1) != 1:
        problems.append(f"{len(h1)} <h1> elements: {[h.text() for h in h1]}")
    mains = page.all("main")
    if len(mains) != 1 or mains[0].attrs.get("id") != "main":
        problems.append(f"not one <main id=main>: {mains}")
    if not page.all("header"):
        problems.append("no <header>")
    if logged_in and not page.all("nav"):
        problems.append("no <nav>")
    links = page.all("a")
    if not links or links[0].attrs.get("href") != "#main":
        problems.append(f"the first link is not the skip link to #main: {links[:1]}")
    seen: dict[str, int] = {}
    for element in page.elements:
        if "id" in element.attrs:
            seen[element.attrs["id"]] = seen.get(element.attrs["id"], 0) + 1
    problems += [f'id "{i}" is used {n} times' for i, n in seen.items() if n > 1]
    for element in page.elements:
        for attribute in ("aria-describedby", "aria-labelledby", "aria-controls", "list"):
            missing = [i for i in element.ids(attribute) if i not in seen]
            if missing:
                problems.append(f"{element} {attribute} names missing ids {missing}")
        if element.tag == "label" and element.attrs.get("for") and element.attrs["for"] not in seen:
            problems.append(f"{element} is for a missing id")
        tabindex = element.attrs.get("tabindex", "").strip()
        if tabindex.lstrip("-").isdigit() and int(tabindex) > 0:
            problems.append(f"{element} has a positive tabindex")
    for control in page.all("input", "select", "textarea"):
        if control.tag == "input" and control.attrs.get("type", "text") in NOT_LABELLED:
            continue
        if why := accessible_name_problem(control, page):
            problems.append(f"{control}: {why}")
    for frame in page.all("iframe"):
        if not frame.attrs.get("title", "").strip():
            problems.append(f"{frame} has no title")
    for image in page.all("img", "svg"):
        hidden = image.attrs.get("aria-hidden") == "true"
        titled = any(isinstance(c, Element) and c.tag == "title" for c in image.children)
        named = image.attrs.get("aria-label", "").strip() or "alt" in image.attrs or titled
        if not hidden and not named:
            problems.append(f"{image} has no text alternative and is not aria-hidden")
    return problems


def assert_structured(html: str, where: str, *, logged_in: bool) -> None:
    problems = structure_problems(html, logged_in=logged_in)
    assert not problems, f"{where}:\n  " + "\n  ".join(problems)


# --- every page ------------------------------------------------------------------------------
# The pages are the same whichever database holds the data: SQLite only.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", ["owner", "read-only"])
def test_every_page_has_one_h1_landmarks_and_named_controls(web, role):
    seeded = seed(web)
    client = web.client(role)
    found, checked = {}, []
    for endpoint, url in html_pages(web.app, seeded):
        if endpoint == "auth.logout":
            continue
        response = client.get(url)
        if response.status_code in (301, 302, 303):
            continue
        assert "text/html" in response.content_type, url
        checked.append(Page(response.get_data(as_text=True)))
        problems = structure_problems(response.get_data(as_text=True), logged_in=True)
        if problems:
            found[f"{url} ({response.status_code})"] = problems
    # what the checks are about is on the pages: the HTML mail's frame, the bell, forms
    assert any(page.all("iframe") for page in checked), "no page shows the HTML mail"
    assert any(page.all("svg") for page in checked) and len(checked) > 20
    report = "\n".join(f"{url}:\n  " + "\n  ".join(lines) for url, lines in found.items())
    assert not found, report


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_login_and_error_pages_have_the_same_structure(web):
    anonymous = web.client(None)
    assert_structured(anonymous.get("/login").get_data(as_text=True), "/login", logged_in=False)
    missing = anonymous.get("/setup?token=guessed")  # what a stranger may reach
    assert missing.status_code == 404
    assert_structured(missing.get_data(as_text=True), "404, anonymous", logged_in=False)
    missing = web.client("owner").get("/projects/999999/protocol")
    assert missing.status_code == 404
    assert_structured(missing.get_data(as_text=True), "404, logged in", logged_in=True)


def fresh_client(tmp_path):
    """A test client of an installation nobody has set up yet."""
    from admin_ui import create_app
    from postroom.config import load_settings

    config = tmp_path / "fresh.toml"
    config.write_text("")
    return create_app(load_settings(config), testing=True).test_client()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_setup_pages_have_the_same_structure(storage_db, tmp_path):
    from domain.tokens import setup_token

    client = fresh_client(tmp_path)
    needed = client.get("/login")
    assert "setup" in needed.get_data(as_text=True)
    assert_structured(needed.get_data(as_text=True), "/login before setup", logged_in=False)
    setup = client.get(f"/setup?token={setup_token()}")
    assert setup.status_code == 200
    assert_structured(setup.get_data(as_text=True), "/setup", logged_in=False)


# --- a refused field says why, to assistive technology too ---------------------------------
def assert_tied(
    html: str, name: str, message: str, hint: str | None = None, *, also: tuple[str, ...] = ()
) -> None:
    """The field `name` is marked aria-invalid and described by the element saying `message`
    (and still by its hint); no other field is marked but those named in `also`, each
    described by a message.
    """
    page = Page(html)
    ids = page.by_id()
    invalid = [e for e in page.elements if e.attrs.get("aria-invalid") == "true"]
    marked = {e.attrs.get("name") for e in invalid}
    assert marked <= {name, *also}, f"marked invalid besides {name!r}: {invalid}"
    for element in invalid:
        described = [ids[i].text() for i in element.ids("aria-describedby") if i in ids]
        assert any(described), f"{element} is marked invalid but described by no message"
    fields = [e for e in invalid if e.attrs.get("name") == name]
    assert fields, f"no field {name!r} is marked aria-invalid; invalid: {invalid}"
    for element in fields:
        described = [ids[i].text() for i in element.ids("aria-describedby") if i in ids]
        assert any(message in text for text in described), (
            f"{element} is not described by {message!r}: {described}"
        )
        if hint is not None:
            assert hint in element.ids("aria-describedby"), f"{element} lost its hint {hint}"
    assert not structure_problems(html, logged_in="<nav" in html), structure_problems(
        html, logged_in="<nav" in html
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_failed_login_marks_email_and_password(web):
    client = web.client(None)
    page = client.post(
        "/login",
        data={"email": "owner@agency.test", "password": "wrong", "csrf_token": csrf_token(client)},
    )
    assert page.status_code == 401
    for name in ("email", "password"):
        assert_tied(
            page.get_data(as_text=True),
            name,
            "Email or password is wrong.",
            also=("email", "password"),
        )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_setup_ties_each_refusal_to_its_field(storage_db, tmp_path):
    from domain.tokens import setup_token

    client = fresh_client(tmp_path)
    path = f"/setup?token={setup_token()}"
    good = {
        "agency": "Pixel",
        "name": "Owner",
        "email": "owner@pixel.test",
        "password": "plum cake at nine",
        "time_zone": "Europe/Berlin",
    }
    for name, value, message, hint in (
        ("agency", "", "Name your agency.", None),
        ("name", "x" * 201, "at most 200 characters", "name-hint"),
        ("email", "not an address", "not a valid email address", None),
        ("password", "nine char", "at least 10 characters", None),
        ("time_zone", "Mars/Olympus", "Choose a time zone", "time-zone-hint"),
    ):
        sent = {**good, name: value, "csrf_token": csrf_token(client, path)}
        page = client.post(path, data=sent)
        assert page.status_code == 200, name
        assert_tied(page.get_data(as_text=True), name, message, hint)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_profile_ties_each_refusal_to_its_field(web):
    client = web.client("read-only")
    for path, sent, name, message, hint in (
        ("/profile/name", {"name": "x" * 201}, "name", "at most 200 characters", "name-hint"),
        (
            "/profile/time-zone",
            {"time_zone": "Mars/Olympus"},
            "time_zone",
            "Choose a time zone",
            "time-zone-hint",
        ),
        ("/profile/language", {"language": "xx"}, "language", "Choose a language", "language-hint"),
        (
            "/profile/password",
            {"current_password": "wrong one!", "new_password": "plum cake at nine"}
            | {"new_password_repeat": "plum cake at nine"},
            "current_password",
            "the current password is wrong",
            None,
        ),
        (
            "/profile/password",
            {"current_password": PASSWORD, "new_password": "short"}
            | {"new_password_repeat": "short"},
            "new_password",
            "at least 10 characters",
            "password-hint",
        ),
        (
            "/profile/password",
            {"current_password": PASSWORD, "new_password": "plum cake at nine"}
            | {"new_password_repeat": "plum cake at ten"},
            "new_password_repeat",
            "The two new passwords differ.",
            None,
        ),
        (
            "/profile/password",
            {"current_password": PASSWORD, "new_password": "x" * 1001}
            | {"new_password_repeat": "x" * 1001},
            "new_password",
            "Passwords must stay under 1000 characters.",
            "password-hint",
        ),
    ):
        page = post(client, path, sent, token_from="/profile")
        assert page.status_code == 400, (path, name)
        assert_tied(page.get_data(as_text=True), name, message, hint)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_team_ties_each_refusal_of_a_new_member_to_its_field(web):
    good = {"email": "new@agency.test", "name": "New", "role": "member", "password": PASSWORD}
    for role, name, value, message in (
        ("owner", "email", "not an address", "not a valid email address"),
        ("owner", "email", "member@agency.test", "is already a member"),
        ("owner", "name", "x" * 201, "must each stay under 200 characters"),
        ("owner", "password", "nine char", "at least 10 characters"),
        ("admin", "role", "owner", "Only an owner may add another owner."),
    ):
        page = post(web.client(role), "/team/members", {**good, name: value}, token_from="/team")
        assert page.status_code in (400, 403), (name, value)
        assert_tied(page.get_data(as_text=True), name, message)

    # a refused role change is marked at that member's role
    owner = web.users["owner"]
    page = post(
        web.client("owner"), f"/team/{owner.id}/role", {"role": "admin"}, token_from="/team"
    )
    assert page.status_code == 409
    assert_tied(page.get_data(as_text=True), "role", "The account needs an active owner")
    invalid = [
        e for e in Page(page.get_data(as_text=True)).all("select") if "aria-invalid" in e.attrs
    ]
    assert [e.attrs["aria-label"] for e in invalid] == ["Role of owner@agency.test"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_settings_tie_each_refusal_to_its_field(web):
    client = web.client("owner")
    server = {
        "host": "9.9.9.9",  # public, and no name to look up: the network policy lets it pass
        "port": "587",
        "security": "starttls",
        "username": "",
        "password": "",
        "from_address": "office@example.org",
        "from_name": "",
    }
    for path, sent, name, message in (
        ("/settings/smtp", server | {"host": "no host!"}, "host", "must be a host name"),
        ("/settings/smtp", server | {"port": "0"}, "port", "The port must be a number"),
        ("/settings/smtp", server | {"from_address": "x"}, "from_address", "must be an email"),
        ("/settings/smtp", server | {"username": "ü"}, "username", "only ASCII characters"),
        ("/settings/time-zone", {"time_zone": "Mars/Olympus"}, "time_zone", "Choose a time"),
        ("/settings/language", {"language": "xx"}, "language", "Choose a language"),
        ("/settings/signature", {"signature": "x" * 100_000}, "signature", "at most"),
    ):
        page = post(client, path, sent, token_from="/settings")
        assert page.status_code == 400, (path, name)
        assert_tied(page.get_data(as_text=True), name, message)
    # two problems of two fields: each field is described by its own
    page = post(client, "/settings/smtp", server | {"host": "no host!", "port": "0"})
    assert_tied(page.get_data(as_text=True), "host", "must be a host name", also=("port",))
    assert_tied(page.get_data(as_text=True), "port", "The port must be a number", also=("host",))
    described = Page(page.get_data(as_text=True)).by_id()
    host = next(
        e for e in Page(page.get_data(as_text=True)).all("input") if e.attrs.get("name") == "host"
    )
    assert all("port" not in described[i].text() for i in host.ids("aria-describedby"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_project_forms_tie_each_refusal_to_its_field(web, bakery):
    client = web.client("owner")
    project = {"name": "Pixel", "domain": "", "status": "in progress", "contact_name": ""}
    edit = f"/projects/{bakery.id}/edit"
    for path, sent, name, message, hint in (
        ("/projects/new", project | {"name": ""}, "name", "Give the project a name.", None),
        ("/projects/new", project | {"domain": "a b"}, "domain", "Enter a domain like", None),
        ("/projects/new", project | {"contact_name": "a\tb"}, "contact_name", "one line", None),
        ("/projects/new", project | {"status": "x"}, "status", "Choose one of the listed", None),
        (
            "/projects/new",
            project | {"addresses": "not an address"},
            "addresses",
            "not a valid email address",
            "addresses-hint",
        ),
        (edit, project | {"name": "x" * 201}, "name", "Keep this under 200 characters.", None),
        (
            edit,
            project | {"invitation_link": "ftp://x"},
            "invitation_link",
            "Enter a web address starting with https://",
            "invitation-link-hint",
        ),
        (
            f"/projects/{bakery.id}/addresses",
            {"address": "nobody", "kind": "customer"},
            "address",
            "valid",
            None,
        ),
    ):
        page = post(client, path, sent, token_from=edit)
        assert page.status_code == 400, (path, name)
        assert_tied(page.get_data(as_text=True), name, message, hint)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_protocol_search_ties_its_errors_to_the_search_and_the_dates(web, bakery):
    client = web.client("owner")
    protocol = f"/projects/{bakery.id}/protocol"
    for query, name, message in (
        ("?q=is:closed", "q", "is: must be is:open or is:done"),
        ("?from_date=2026-13-45", "from_date", "The start date is not a date"),
        ("?to_date=tomorrow", "to_date", "The end date is not a date"),
    ):
        page = client.get(protocol + query)
        assert_tied(page.get_data(as_text=True), name, message)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_new_entry_ties_its_error_to_the_field(web, bakery):
    client = web.client("member")
    path = f"/projects/{bakery.id}/entries/new"
    for sent, name, message in (
        ({"kind": "note", "text": " "}, "text", "Write some text first."),
        ({"kind": "call", "text": "x", "occurred_at": "soon"}, "occurred_at", "cannot be read"),
        ({"kind": "fax", "text": "x"}, "kind", "Choose what kind of entry this is."),
    ):
        page = post(client, path, sent, token_from=path)
        assert page.status_code == 400, name
        assert_tied(page.get_data(as_text=True), name, message)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_message_to_the_customer_ties_its_refusal_to_the_field(web, bakery):
    client = web.client("member")
    path = f"/projects/{bakery.id}/messages/new"
    good = {"to": "", "to_other": "anna@example.org", "subject": "Offer", "body": "Hello"}
    for sent, name, message in (
        (good | {"to_other": "anna"}, "to_other", "not an email address"),
        (good | {"to_other": ""}, "to_other", "choose or type a recipient"),
        (good | {"subject": " "}, "subject", "write a subject"),
        (good | {"body": " "}, "body", "the message is empty"),
    ):
        page = post(client, path, sent, token_from=path)
        assert page.status_code == 400, name
        assert_tied(page.get_data(as_text=True), name, message)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_template_ties_its_refusal_to_the_field(web):
    client = web.client("member")
    good = {"name": "Offer", "subject": "Offer", "body": "Hello"}
    for sent, name, message in (
        (good | {"name": " "}, "name", "Give the template a name."),
        (good | {"subject": "Hi {{ customer_nam }}"}, "subject", "unknown variable"),
        (good | {"subject": " "}, "subject", "needs a subject and a text"),
        (good | {"body": "Hello\n{{ website_name }"}, "body", "syntax error"),
        (good | {"body": " "}, "body", "needs a subject and a text"),
    ):
        page = post(client, "/templates/new", sent, token_from="/templates/new")
        assert page.status_code == 400, name
        assert_tied(page.get_data(as_text=True), name, message)
