"""Starter mail templates in English and German: shipped as data, the same four in each
language, each good template language that renders a real project's values; a new account gets
those of its language (issue 18)."""

from __future__ import annotations

import pytest
from jinja2 import Environment, meta

from domain.accounts import create_account
from domain.projects import create_project
from domain.templates import check_template
from domain.users import create_user
from postroom.mail_templates import VARIABLES, render, sample_variables, variables_for
from postroom.starter_templates import KEYS, LANGUAGES, _load, starter_templates
from postroom.template_language import checked
from storage.models import Account, MailTemplate, Project

GERMAN_NAMES = {
    "Material anfordern",
    "Feedback erfragen",
    "Entwurf zur Überprüfung vorlegen",
    "Website ist online",
}
ENGLISH_NAMES = {"Ask for material", "Ask for feedback", "Draft ready for review", "Site is live"}


def _project(account: Account, status: str = "review") -> Project:
    Account.update(signature="Lind Web · Hamburg").where(Account.id == account.id).execute()
    project = create_project(
        account.id,
        "Bäckerei Müller",
        domain="baeckerei.example",
        status=status,
        contact_name="Paul Müller",
        customer_addresses=["anna@baeckerei.example"],
    )
    Project.update(invitation_link="https://builder.example/invite/xyz").where(
        Project.id == project.id
    ).execute()
    return Project.get_by_id(project.id)


def test_every_language_ships_the_same_four_templates():
    assert set(LANGUAGES) == {"en", "de"}
    for language in LANGUAGES:
        templates = _load(language)  # raises if a file has other keys than KEYS
        assert len(templates) == len(KEYS) == 4
        assert len({name for name, _, _ in templates}) == 4
    assert {name for name, _, _ in starter_templates("de")} == GERMAN_NAMES
    assert {name for name, _, _ in starter_templates("en")} == ENGLISH_NAMES


def test_a_language_without_templates_gets_the_english_ones():
    assert starter_templates("fr") == starter_templates("en") == starter_templates(None)
    assert starter_templates("de-DE") == starter_templates("de")


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_shipped_template_uses_only_existing_variables_and_passes_the_check(language):
    env = Environment(autoescape=True)  # parsing only: escaping does not change the tree
    for name, subject, body in starter_templates(language):
        assert check_template(
            name, subject, body, check_language=lambda s, b: render(s, b, sample_variables())
        )
        for source in (subject, body):
            checked_tree = checked(env, source, VARIABLES)  # refuses unknown variables
            assert meta.find_undeclared_variables(checked_tree) <= set(VARIABLES)


@pytest.mark.parametrize(
    ("language", "names", "greeting", "closing"),
    [
        ("de", GERMAN_NAMES, "Hallo Paul Müller,", "Viele Grüße\nSam Lind\n\nLind Web · Hamburg"),
        (
            "en",
            ENGLISH_NAMES,
            "Hello Paul Müller,",
            "Kind regards,\nSam Lind\n\nLind Web · Hamburg",
        ),
    ],
)
def test_a_new_account_gets_the_templates_of_its_language_and_they_render(
    storage_db, language, names, greeting, closing
):
    account = create_account("Agentur Lind", starter_templates(language))
    user = create_user(
        account.id, "sam@agency.test", "member", "correct horse battery", name="Sam Lind"
    )
    project = _project(account)
    stored = list(MailTemplate.select().where(MailTemplate.account == account.id))
    assert {t.name for t in stored} == names
    for template in stored:
        subject, body = render(
            template.subject, template.body, variables_for(project, user, "anna@baeckerei.example")
        )
        assert "Bäckerei Müller" in subject
        assert body.startswith(greeting) and body.endswith(closing)
        assert "{{" not in body + subject and "{%" not in body + subject
    review = next(t for t in stored if "Entwurf" in t.name or "review" in t.name)
    assert (
        "https://builder.example/invite/xyz"
        in render(review.subject, review.body, variables_for(project, user, ""))[1]
    )


def test_a_german_template_without_a_customer_name_still_greets():
    _name, subject, body = starter_templates("de")[0]
    values = dict.fromkeys(VARIABLES, "")
    values["website_name"] = "Bäckerei Müller"
    assert render(subject, body, values)[1].startswith("Hallo,\n")


def test_an_existing_account_keeps_its_templates(storage_db):
    account = create_account("Agency Lind", starter_templates("en"))
    create_account("Agentur Berg", starter_templates("de"))
    stored = MailTemplate.select().where(MailTemplate.account == account.id)
    assert {t.name for t in stored} == ENGLISH_NAMES


def test_the_cli_creates_an_account_in_its_language_with_its_templates(db_url, tmp_path):
    from storage.db import open_database
    from tests.daemon import Daemon

    daemon = Daemon(tmp_path, db_url)
    daemon.cli("init")
    german = daemon.cli_json("account", "create", "Agentur Berg", "--language", "de")
    english = daemon.cli_json("account", "create", "Agency Lind")
    refused = daemon.cli("account", "create", "Agence", "--language", "xx", check=False)
    assert refused.returncode != 0 and "Choose a language" in refused.stderr

    db = open_database(db_url)
    try:
        assert Account.get_by_id(german["id"]).language == "de"
        assert Account.get_by_id(english["id"]).language == "en"
        names = {
            account["id"]: {
                t.name for t in MailTemplate.select().where(MailTemplate.account == account["id"])
            }
            for account in (german, english)
        }
        assert names == {german["id"]: GERMAN_NAMES, english["id"]: ENGLISH_NAMES}
        assert Account.select().count() == 2  # the refused one was not made
    finally:
        db.close()
