"""Mail templates: rendered in a sandbox from the project's values; tricks and typos refused."""

from __future__ import annotations

import pytest

from postroom.accounts import new_account
from postroom.auth import create_user
from postroom.mail_templates import (
    STARTER_TEMPLATES,
    VARIABLES,
    TemplateError,
    render,
    sample_variables,
    variables_for,
)
from storage.accounts import create_project
from storage.models import Account, MailTemplate, Project
from tests.mail import message
from tests.test_api import deliver


@pytest.fixture
def shop(storage_db):
    """A new account (with its starter templates), a sender and a project with every value."""
    account = new_account("Agency Lind")
    Account.update(signature="Lind Web · Hamburg").where(Account.id == account.id).execute()
    user = create_user(
        account.id, "sam@agency.test", "member", "correct horse battery", name="Sam Lind"
    )
    project = create_project(
        account.id,
        "Bakery Miller",
        domain="bakery.example",
        status="review",
        contact_name="Paul Miller",
        customer_addresses=["anna@bakery.example"],
    )
    Project.update(invitation_link="https://builder.example/invite/xyz").where(
        Project.id == project.id
    ).execute()
    return account, user, Project.get_by_id(project.id)


def test_a_template_with_every_variable_renders_the_projects_values(shop):
    account, user, project = shop
    deliver(account, message("Hi", sender="Anna Miller <anna@bakery.example>"))
    subject = "{{ website_name }} ({{ status }})"
    body = "\n".join(f"{name}={{{{ {name} }}}}" for name in VARIABLES)
    rendered_subject, rendered_body = render(
        subject, body, variables_for(project, user, "Anna@Bakery.example")
    )
    assert rendered_subject == "Bakery Miller (review)"
    assert rendered_body.splitlines() == [
        "website_name=Bakery Miller",
        "domain=bakery.example",
        "status=review",
        "customer_name=Anna Miller",  # as she signs her mail
        "contact_person=Paul Miller",
        "customer_email=anna@bakery.example",
        "invitation_link=https://builder.example/invite/xyz",
        "sender_name=Sam Lind",
        "sender_email=sam@agency.test",
        "signature=Lind Web · Hamburg",
    ]


def test_the_customer_name_falls_back_to_the_contact_person(shop):
    _account, user, project = shop
    values = variables_for(project, user, "new@bakery.example")
    assert values["customer_name"] == "Paul Miller"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ lipsum.__globals__ }}",
        "{% for x in ().__class__.__base__.__subclasses__() %}{{ x }}{% endfor %}",
        "{{ website_name.__init__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ joiner.__init__.__globals__ }}",
        "{{ website_name|attr('__class__') }}",
        "{{ '{0.__class__}'.format(website_name) }}",
        "{{ config }}",
        "{{ self.__dict__ }}",
        "{{ 'x' * 100000000 }}",
        "{{ website_name.center(999999999) }}",
    ],
)
def test_sandbox_escapes_and_resource_tricks_are_refused(source):
    with pytest.raises(TemplateError) as refused:
        render("Hello", source, sample_variables())
    assert "the body" in str(refused.value)


def test_unknown_variables_and_syntax_errors_are_refused_with_a_clear_message():
    with pytest.raises(TemplateError, match=r"unknown variable.*'customer_nam' is undefined"):
        render("Hi {{ customer_nam }}", "text", sample_variables())
    with pytest.raises(TemplateError, match="unknown variable"):
        render("Hi", "{% if phone %}call us{% endif %}", sample_variables())
    with pytest.raises(TemplateError, match="syntax error on line 2"):
        render("Hi", "Hello\n{{ website_name }", sample_variables())


def test_a_subject_that_renders_to_a_line_break_is_refused():
    values = {**sample_variables(), "website_name": "Shop\r\nBcc: victim@example.com"}
    with pytest.raises(TemplateError, match="subject has a line break"):
        render("News about {{ website_name }}", "body", values)
    # the same value is harmless in the body, and is never parsed as template source
    values["website_name"] = "{{ ''.__class__ }}\nline two"
    assert render("News", "{{ website_name }}", values)[1] == "{{ ''.__class__ }}\nline two"


def test_a_new_account_has_the_four_starter_templates_and_they_render(shop):
    account, user, project = shop
    stored = list(MailTemplate.select().where(MailTemplate.account == account.id))
    assert sorted(t.name for t in stored) == sorted(name for name, _, _ in STARTER_TEMPLATES)
    assert len(stored) == 4
    for template in stored:
        subject, body = render(
            template.subject, template.body, variables_for(project, user, "anna@bakery.example")
        )
        assert "Bakery Miller" in subject
        assert body.startswith("Hello Paul Miller,") and body.endswith("Lind Web · Hamburg")
        assert "{{" not in body and "{%" not in body
    live = next(t for t in stored if t.name == "Site is live")
    assert (
        "https://bakery.example"
        in render(live.subject, live.body, variables_for(project, user, ""))[1]
    )
