"""Keyboard only, focus always visible, changes said out loud (issue 19, acceptance 2).

In Chromium, with Tab, Shift+Tab, Enter, Space and typed text only (no mouse, no page.click
or page.fill): log in, open Unassigned from the nav, assign a mail to a project remembering its
sender, open the project's protocol, tick the entry done, write an internal note. Every element
the focus lands on shows a focus indicator (a computed outline or box-shadow); the skip link is
the first Tab stop of a page and moves the focus to the main content; what the keyboard did is
stored. The done checkbox is named with its entry's subject (lists, entry page, read-only
boxes too), ticking it in place is announced in the live region (#live), and the confirmation
after assigning gets the focus, so a screen reader reads it.
"""

from __future__ import annotations

import re

import pytest

from domain import entries as domain_entries
from domain import projects as domain_projects
from domain.languages import set_user_language
from storage.models import CustomerAddress, Entry, User
from tests.mail import message
from tests.test_ui_unassigned import receive
from tests.web import PASSWORD, post

# The focused element and whether it shows a focus indicator: a computed outline (not none,
# wider than 0) or a box-shadow.
FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return {tag: "body", visible: false, name: "(nothing)"};
  const s = getComputedStyle(e);
  const outline = s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
  const shadow = s.boxShadow !== "none" && s.boxShadow !== "";
  const name = (e.getAttribute("aria-label") || e.innerText || e.value || e.name || "").trim();
  const id = e.id ? "#" + e.id : "";
  return {
    tag: e.tagName.toLowerCase() + id + (e.className ? "." + e.className : ""),
    visible: outline || shadow,
    name: name.slice(0, 60),
  };
}"""


def focused(page) -> dict:
    return page.evaluate(FOCUSED)


def focus_visible(page) -> bool:
    """Whether the focused element shows a visible focus indicator (outline or box-shadow)."""
    return focused(page)["visible"]


def is_focused(page, selector: str) -> bool:
    return page.evaluate(
        "s => !!document.activeElement && document.activeElement.matches(s)", selector
    )


def tab_to(page, selector: str, key: str = "Tab", presses: int = 80) -> None:
    """Press Tab (or Shift+Tab) until `selector` has the focus; every stop on the way shows it
    (Chromium's calendar button inside a date field included: the field shows the ring)."""
    for _ in range(presses):
        if is_focused(page, selector):
            assert focus_visible(page), f"no visible focus on {focused(page)}"
            return
        page.keyboard.press(key)
        now = focused(page)
        if now["tag"] == "body":  # Tab past the last control reaches the browser, not the page
            continue
        assert now["visible"], f"no visible focus on {now} ({page.url})"
    raise AssertionError(f"{selector} was not reached by {key} on {page.url}")


def skip_to_main(page) -> None:
    """On a fresh page: the first Tab reaches the skip link, Enter moves the focus to main."""
    assert focused(page)["tag"] == "body"
    page.keyboard.press("Tab")
    assert is_focused(page, "a.skip-link"), f"first Tab stop: {focused(page)} on {page.url}"
    assert focus_visible(page), "the skip link shows no focus"
    assert page.locator("a.skip-link").is_visible(), "the focused skip link is not shown"
    page.keyboard.press("Enter")
    assert is_focused(page, "main#main"), f"the skip link left the focus on {focused(page)}"


def press_and_wait(page, key: str) -> None:
    """A key press that sends a form (or follows a link): wait for the new page."""
    with page.expect_navigation():
        page.keyboard.press(key)


def open_login(page, base: str) -> None:
    """Open the login page and wait until its email field has the focus: Chromium runs
    `autofocus` at the next frame after the page, which may come after the load event."""
    page.goto(f"{base}/login")
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.matches('input[name=email]')"
    )


def log_in_by_keyboard(page, base: str, email: str) -> None:
    """The login page: the email field has the focus (autofocus); type, Tab, type, Enter."""
    open_login(page, base)
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    press_and_wait(page, "Enter")


@pytest.fixture
def bakery(web):
    return domain_projects.create_project(web.account.id, "Bakery Sommer", domain="bakery.test")


# The keyboard path is the same whichever database holds the data: SQLite only.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_keyboard_only_from_login_to_an_internal_note_with_the_focus_always_visible(
    web, bakery, page, network_log
):
    from playwright.sync_api import expect

    from tests.browser import screenshot
    from tests.test_ui_entries import serving

    mail = receive(
        web.account.id, message("New opening hours", sender="Anna <anna@elsewhere.test>")
    )
    assert mail.project_id is None
    with serving(web.app) as base:
        # Log in: the email field has the focus (autofocus); type, Tab, type, Enter.
        open_login(page, base)
        assert is_focused(page, "input[name=email]") and focus_visible(page)
        page.keyboard.type("member@agency.test")
        page.keyboard.press("Tab")
        assert is_focused(page, "input[name=password]") and focus_visible(page)
        page.keyboard.type(PASSWORD)
        press_and_wait(page, "Enter")
        assert page.url == f"{base}/"

        # Tickets: the skip link comes first; the nav leads to Unassigned.
        skip_to_main(page)
        tab_to(page, "nav a[href='/unassigned']", key="Shift+Tab")
        press_and_wait(page, "Enter")
        assert page.url == f"{base}/unassigned"

        # Unassigned: choose the project by typing its name into the focused list, then
        # "Assign and remember sender".
        skip_to_main(page)
        tab_to(page, f"#project-{mail.id}")
        assert page.get_by_role("combobox", name="Project for “New opening hours”").evaluate(
            "e => e === document.activeElement"
        )
        page.keyboard.type("Bakery")
        assert page.locator(f"#project-{mail.id}").input_value() == str(bakery.id)
        tab_to(page, f"#entry-{mail.id} form.assign button[name=remember][value='1']")
        press_and_wait(page, "Enter")
        screenshot(page, "keyboard-assigned")

        # The confirmation has the focus: a screen reader reads it, Tab goes on from there.
        said = "Filed “New opening hours” under Bakery Sommer."
        assert is_focused(page, "main .flashes"), f"after assigning: {focused(page)}"
        assert said in page.evaluate("document.activeElement.innerText")
        assert "Mail from anna@elsewhere.test will go there from now on." in page.evaluate(
            "document.activeElement.innerText"
        )
        assert page.locator("main .flashes").get_attribute("role") == "status"
        assert focus_visible(page), "the focused confirmation shows no focus"

        # Projects (from the nav, going back with Shift+Tab), then the bakery's protocol.
        tab_to(page, "nav a[href='/projects']", key="Shift+Tab")
        press_and_wait(page, "Enter")
        skip_to_main(page)
        tab_to(page, f"a[href='/projects/{bakery.id}/protocol']")
        press_and_wait(page, "Enter")
        assert page.url == f"{base}/projects/{bakery.id}/protocol"

        # Tick the mail done with Space: the box keeps the focus, the live region says so.
        skip_to_main(page)
        box = page.get_by_role("checkbox", name="Done: New opening hours")
        assert box.count() == 1
        tab_to(page, f"#entry-{mail.id} input[name=done]")
        assert box.evaluate("e => e === document.activeElement")
        page.keyboard.press("Space")
        live = page.locator("#live")
        expect(live).to_have_text("Marked done: New opening hours. 0 open tickets.")
        assert is_focused(page, f"#entry-{mail.id} input[name=done]"), (
            f"ticking done moved the focus to {focused(page)}"
        )
        assert focus_visible(page)
        expect(page.locator(f"#entry-{mail.id}")).to_have_class(re.compile(r"\bdone\b"))
        assert page.locator("#open-count").inner_text() == "0"
        screenshot(page, "keyboard-ticked-done")

        # "+ New" comes before the entries: Shift+Tab back to it, then write an internal note.
        tab_to(page, "a.new-entry", key="Shift+Tab")
        press_and_wait(page, "Enter")
        assert page.url == f"{base}/projects/{bakery.id}/entries/new"
        skip_to_main(page)
        tab_to(page, "input[name=kind][value=note]")
        assert page.locator("input[name=kind][value=note]").is_checked()
        tab_to(page, "textarea[name=text]")  # past "When it happened" and its calendar button
        page.keyboard.type("Called Anna back: the new hours go online on Monday.")
        tab_to(page, "form.new-entry button[type=submit]")
        press_and_wait(page, "Enter")
        assert page.url.startswith(f"{base}/projects/{bakery.id}/protocol")
        screenshot(page, "keyboard-note-added")

    filed = Entry.get_by_id(mail.id)
    assert filed.project_id == bakery.id
    assert filed.status == "done"
    remembered = CustomerAddress.get(CustomerAddress.address == "anna@elsewhere.test")
    assert remembered.project_id == bakery.id
    note = Entry.get(Entry.kind == "note", Entry.project == bakery.id)
    assert note.text == "Called Anna back: the new hours go online on Monday."
    assert note.author_id == web.users["member"].id
    network_log.assert_only_local()
    network_log.assert_no_dialogs()
    network_log.assert_no_console_errors()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_german_reader_hears_the_tick_in_german_and_a_read_only_box_has_its_name(
    web, bakery, page, network_log
):
    from playwright.sync_api import expect

    from tests.test_ui_entries import serving

    call = domain_entries.add_manual_entry(
        bakery, web.users["owner"], kind="call", text="Anna rief an", subject="Neue Zeiten"
    )
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    with serving(web.app) as base:
        log_in_by_keyboard(page, base, "member@agency.test")
        page.goto(f"{base}/entries/{call.id}")
        skip_to_main(page)
        tab_to(page, "input[name=done]")
        box = page.get_by_role("checkbox", name="Erledigt: Neue Zeiten")
        assert box.evaluate("e => e === document.activeElement")
        page.keyboard.press("Space")
        live = page.locator("#live")
        expect(live).to_have_text("Als erledigt markiert: Neue Zeiten. 0 offene Tickets.")
        page.keyboard.press("Space")
        expect(live).to_have_text("Wieder offen: Neue Zeiten. 1 offenes Ticket.")
        assert is_focused(page, "input[name=done]") and focus_visible(page)
        assert Entry.get_by_id(call.id).status == "open"

        # A read-only member: the same name on a disabled box, nothing to send.
        page.context.clear_cookies()
        log_in_by_keyboard(page, base, "read-only@agency.test")
        for path in (f"/entries/{call.id}", f"/projects/{bakery.id}/protocol", "/"):
            page.goto(base + path)
            box = page.get_by_role("checkbox", name="Done: Neue Zeiten")
            expect(box).to_be_disabled()
    network_log.assert_only_local()
    network_log.assert_no_console_errors()


# a done box: its checkbox and the hidden words of its label
DONE_BOX = re.compile(
    r'<label class="done-box"[^>]*>\s*(<input type="checkbox"[^>]*>)\s*'
    r'<span class="visually-hidden">([^<]*)</span>'
)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_confirmation_on_a_page_opened_at_a_row_is_said_and_tab_goes_on_from_the_row(
    web, bakery, page, network_log
):
    """Mail to a customer queued: the protocol opens at its row; the keyboard stays there and
    the confirmation reaches a screen reader through the live region."""
    from playwright.sync_api import expect

    from tests.test_ui_entries import serving

    with serving(web.app) as base:
        log_in_by_keyboard(page, base, "member@agency.test")
        page.goto(f"{base}/projects/{bakery.id}/messages/new")
        page.fill("input[name=to_other]", "anna@bakery.test")
        page.fill("input[name=subject]", "Your new hours")
        page.fill("textarea[name=body]", "They are online.")
        page.locator("form.message-form input[name=subject]").focus()
        press_and_wait(page, "Enter")
        sent = Entry.get(Entry.subject == "Your new hours")
        assert page.url.endswith(f"#entry-{sent.id}")
        said = "Mail to anna@bakery.test queued; it is sent in the background."
        expect(page.locator("main .flashes")).to_have_text(said)
        expect(page.locator("#live")).to_have_text(said)
        page.keyboard.press("Tab")
        assert page.evaluate(
            "id => document.getElementById(id).contains(document.activeElement)",
            f"entry-{sent.id}",
        ), f"Tab after opening at the row went to {focused(page)}"
        assert focus_visible(page)
    network_log.assert_only_local()
    network_log.assert_no_console_errors()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_calendar_button_of_a_date_field_shows_its_focus(web, bakery, page):
    """Tab stops on the calendar button of a date field too; the field shows where it is."""
    from tests.test_ui_entries import serving

    with serving(web.app) as base:
        log_in_by_keyboard(page, base, "member@agency.test")
        page.goto(f"{base}/projects/{bakery.id}/protocol")
        skip_to_main(page)
        tab_to(page, "#to-date")  # through the From field, its calendar button included
        tab_to(page, "details.filters summary")


def test_the_done_box_is_named_with_the_subject_on_every_list_and_the_entry_page(web, bakery):
    call = domain_entries.add_manual_entry(
        bakery, web.users["owner"], kind="call", text="Anna called about the hours"
    )
    mail = receive(web.account.id, message("Invoice 42", sender="Ben <ben@elsewhere.test>"))
    domain_entries.assign_mail(mail, bakery, None, remember_sender=False)
    pages = ("/", f"/projects/{bakery.id}/protocol", f"/entries/{mail.id}", f"/entries/{call.id}")
    for role, disabled in (("member", ""), ("read-only", " disabled")):
        client = web.client(role)
        for path in pages:
            page = client.get(path).get_data(as_text=True)
            boxes = DONE_BOX.findall(page)
            assert boxes, (role, path)
            assert all((" disabled" in tag) == bool(disabled) for tag, _ in boxes), (role, path)
            names = [name for _, name in boxes]
            if path != f"/entries/{call.id}":
                assert "Done: Invoice 42" in names, (role, path, names)
            if path != f"/entries/{mail.id}":
                # no subject: the first words of the text name it, as the bulk box does
                assert "Done: Anna called about the hours" in names, (role, path, names)
    long = receive(web.account.id, message("Angebot " + "x" * 900, sender="anna@bakery.example"))
    page = web.client("member").get(f"/entries/{long.id}").get_data(as_text=True)
    (name,) = [name for _, name in DONE_BOX.findall(page)]
    assert name == "Done: Angebot " + "x" * 71 + "…"  # a name, not the whole long subject
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    page = web.client("member").get(f"/entries/{mail.id}").get_data(as_text=True)
    assert '<span class="visually-hidden">Erledigt: Invoice 42</span>' in page
    assert 'data-said-done="Als erledigt markiert: Invoice 42."' in page
    assert 'data-said-open="Wieder offen: Invoice 42."' in page


def test_ticking_done_answers_app_js_with_the_open_count_in_words(web, bakery):
    first = domain_entries.add_manual_entry(bakery, web.users["owner"], kind="call", text="One")
    domain_entries.add_manual_entry(bakery, web.users["owner"], kind="call", text="Two")
    client = web.client("member")
    page = client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    json = {"Accept": "application/json"}
    answer = client.post(
        f"/entries/{first.id}/done", data={"done": "1", "csrf_token": token}, headers=json
    ).get_json()
    assert answer["done"] is True and answer["open_count"] == 1
    assert answer["open_words"] == "1 open ticket."
    answer = client.post(
        f"/entries/{first.id}/done", data={"done": "", "csrf_token": token}, headers=json
    ).get_json()
    assert answer["open_words"] == "2 open tickets."
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    answer = client.post(
        f"/entries/{first.id}/done", data={"done": "1", "csrf_token": token}, headers=json
    ).get_json()
    assert answer["open_words"] == "1 offenes Ticket."
    # without JavaScript the form goes back where it was, at the entry's row
    response = post(client, f"/entries/{first.id}/done", {"done": ""})
    assert response.status_code == 302 and Entry.get_by_id(first.id).status == "open"


def test_each_unassigned_mail_and_its_controls_are_named_by_its_subject(web, bakery):
    mail = receive(web.account.id, message("Invoice 42", sender="Ben <ben@elsewhere.test>"))
    page = web.client("owner").get("/unassigned").get_data(as_text=True)  # who may delete
    article = re.search(rf'<article class="unassigned" id="entry-{mail.id}"[^>]*>', page).group(0)
    assert f'aria-labelledby="subject-{mail.id}"' in article
    assert re.search(rf'<a class="subject" id="subject-{mail.id}"[^>]*>Invoice 42</a>', page)
    assert (
        f'<label for="project-{mail.id}" class="visually-hidden">Project for “Invoice 42”' in page
    )
    for button in ("Assign", "Discard as spam", "Delete"):
        assert f'aria-describedby="subject-{mail.id}">{button}</button>' in page, button
    assert 'role="radiogroup" aria-label="What goes to spam"' in page
    set_user_language(User.get_by_id(web.users["member"].id), "de")
    page = web.client("member").get("/unassigned").get_data(as_text=True)
    assert "Projekt für „Invoice 42“" in page and 'aria-label="Was in den Spam geht"' in page
