"""Mail templates: variables, filters and conditions from the project's values; tricks refused."""

from __future__ import annotations

import pytest

from domain.accounts import create_account
from domain.projects import create_project
from domain.users import create_user
from postroom.mail_templates import (
    MAX_RESULT_CHARS,
    STARTER_TEMPLATES,
    VARIABLES,
    TemplateError,
    render,
    sample_variables,
    variables_for,
)
from postroom.template_language import (
    MAX_DEPTH,
    MAX_SOURCE_CHARS,
    MAX_TOKENS,
    MAX_VALUE_CHARS,
    MAX_VARIABLE_USES,
)
from storage.models import Account, MailTemplate, Project
from tests.mail import message
from tests.test_api import deliver


@pytest.fixture
def shop(storage_db):
    """A new account (with its starter templates), a sender and a project with every value."""
    account = create_account("Agency Lind", STARTER_TEMPLATES)
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
        "{% for a in website_name %}{% for b in website_name %}{{ a }}{% endfor %}{% endfor %}",
        "{{ website_name.replace('a', website_name) }}",
        "{{ signature|replace('', signature)|replace('', signature) }}",
        "{{ website_name|join(signature) }}",
        "{{ ((9**99)**99)**99 }}",
        "{{ 'a' * 10**9 }}",
        "{{ range(10**9)|list }}",
        "{{ lipsum(100, false, 10000, 10000) }}",
        "{{ cycler(1, 2).next() }}",
        "{{ namespace(a=1) }}",
        "{% set x = website_name ~ website_name %}{{ x }}",
        "{% set x %}{{ signature }}{% endset %}{{ x }}",
        "{% macro twice(n) %}{{ twice(n) }}{{ twice(n) }}{% endmacro %}{{ twice(1) }}",
        "{% call twice() %}x{% endcall %}",
        "{% include 'other' %}",
        "{% import 'other' as other %}",
        "{% from 'other' import x %}",
        "{% extends 'other' %}",
        "{% block b %}x{% endblock %}",
        "{% with a = website_name %}{{ a }}{% endwith %}",
        "{% filter upper %}x{% endfilter %}",
        "{% autoescape false %}x{% endautoescape %}",
        "{{ website_name[0] }}",
        "{{ website_name[:3] }}",
        "{{ website_name + domain }}",
        "{{ 10 - 3 }}",
        "{{ -1 }}",
        "{{ 7 // 2 }}",
        "{{ '%s%s' % (website_name, domain) }}",
        "{{ [website_name] }}",
        "{{ {'a': website_name} }}",
        "{{ website_name|center(1000) }}",
        "{{ website_name|indent(1000) }}",
        "{{ website_name|format(1) }}",
        "{{ website_name|wordwrap(1) }}",
        "{{ website_name|urlize }}",
        "{{ website_name|default(*signature) }}",
        "{{ website_name|truncate(5, end=signature ~ signature) }}",
        "{{ website_name|trim('" + "x" * 101 + "') }}",
        "{{ 1000001 }}",
        "{{ 1e400 }}",
        "{% if 'a' in signature %}x{% endif %}",
        "{% if website_name < domain %}x{% endif %}",
        "{% if status in ('a', domain) %}x{% endif %}",
        "{{ website_name is divisibleby(3) }}",
        "{{ website_name is sameas domain }}",
        "{{ self }}",
        "{{ loop }}",
        "{{ varargs }}",
    ],
)
def test_sandbox_escapes_and_resource_tricks_are_refused(source):
    with pytest.raises(TemplateError) as refused:
        render("Hello", source, sample_variables())
    assert str(refused.value).startswith("The body cannot be used. It ")


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("Hi\n\n{% for a in website_name %}x{% endfor %}", "uses a loop ({% for %}) on line 3"),
        ("{{ website_name.__class__ }}", "uses an attribute (name.something) on line 1"),
        ("{{ website_name.upper() }}", "uses a call such as name(…) on line 1"),
        ("{{ upper(website_name) }}", "uses a call such as name(…) on line 1"),
        ("{{ 9 ** 99 }}", "uses arithmetic (**) on line 1"),
        ("{{ website_name * 3 }}", "uses arithmetic (*) on line 1"),
        ("\n{% set x = 1 %}", "uses {% set %} on line 2"),
        ("{% include 'x' %}", "uses another template ({% include %}) on line 1"),
        ("{% macro m() %}{% endmacro %}", "uses a macro ({% macro %}) on line 1"),
        ("{{ website_name|replace('a', 'b') }}", "uses the filter replace on line 1"),
    ],
)
def test_a_refusal_names_what_is_not_allowed_and_where(source, says):
    with pytest.raises(TemplateError) as refused:
        render("Hello", source, sample_variables())
    assert f"The body cannot be used. It {says}, which is not allowed. " in str(refused.value)
    assert str(refused.value).endswith(
        ". Templates take variables, the filters default, d, upper, lower, title, capitalize, "
        "trim, truncate and {% if %} conditions."
    )


def test_variables_filters_and_simple_conditions_work():
    values = {**sample_variables(), "status": "in progress", "domain": ""}
    body = (
        "{% if status == 'live' %}live{% elif status in ('done', 'in progress') %}busy"
        "{% else %}other{% endif %}|{{ customer_name|upper }}|{{ sender_name|lower|title }}"
        "|{{ domain|default('no domain', true) }}|{{ '  x  '|trim }}"
        "|{{ website_name|truncate(9, true, '…', 0) }}|{{ website_name ~ ' / ' ~ status }}"
        "|{{ 'a' if domain else 'b' }}|{% if not domain and status != 'live' %}y{% endif %}"
        "|{{ invitation_link is none }}{# a comment #}|{% raw %}{{ kept }}{% endraw %}"
        "|{{ customer_name|capitalize|d('x') }}"
    )
    assert render("{{ website_name|upper }}", body, values) == (
        "BAKERY MILLER",
        "busy|ANNA MILLER|Sam Agency|no domain|x|Bakery M…|Bakery Miller / in progress|b|y"
        "|False|{{ kept }}|Anna miller",
    )


def test_the_starter_templates_pass_the_check():
    for _name, subject, body in STARTER_TEMPLATES:
        rendered_subject, rendered_body = render(subject, body, sample_variables())
        assert "Bakery Miller" in rendered_subject and "Sam Agency" in rendered_body


def test_templates_past_the_size_token_depth_and_use_limits_are_refused():
    values = sample_variables()
    cases = [
        ("x" * (MAX_SOURCE_CHARS + 1), "is too long (at most 20,000 characters)"),
        ("{{ domain }}" * (MAX_TOKENS // 2), "has too many parts (at most 2,000 tokens)"),
        ("{{ domain" + "|upper" * (MAX_DEPTH + 1) + " }}", "is nested too deeply"),
        ("{{ domain" + " or domain" * MAX_DEPTH + " }}", "is nested too deeply"),
        ("{{ (" * 300 + "domain" + ") }}" * 300, ""),  # the parser's own limit, no crash
        ("{{ domain }}" * (MAX_VARIABLE_USES + 1), "uses variables too often (at most 100"),
        ("{% if domain %}" * 400 + "{% endif %}" * 400, ""),
    ]
    for source, says in cases:
        with pytest.raises(TemplateError) as refused:
            render("Hi", source, values)
        assert says in str(refused.value)


def test_values_are_cut_and_the_rendered_text_is_bounded():
    values = {name: "ß" * (MAX_VALUE_CHARS * 4) for name in VARIABLES}
    assert len(render("Hi", "{{ signature }}", values)[1]) == MAX_VALUE_CHARS
    # at the use limit, with filters that lengthen text (ß -> SS), the output cap answers
    most = "{{ " + " ~ ".join(["signature|upper"] * MAX_VARIABLE_USES) + " }}"
    with pytest.raises(TemplateError, match="too long once rendered"):
        render("Hi", most, values)
    assert len(render("Hi", "{{ signature|upper }}" * 10, values)[1]) == 20 * MAX_VALUE_CHARS
    assert 20 * MAX_VALUE_CHARS < MAX_RESULT_CHARS


def test_unknown_variables_and_syntax_errors_are_refused_with_a_clear_message():
    with pytest.raises(TemplateError, match=r"unknown variable.*'customer_nam' is undefined"):
        render("Hi {{ customer_nam }}", "text", sample_variables())
    with pytest.raises(TemplateError, match="unknown variable"):
        render("Hi", "{% if phone %}call us{% endif %}", sample_variables())
    with pytest.raises(
        TemplateError, match=r"The body cannot be used\. It has a syntax error on line 2: "
    ):
        render("Hi", "Hello\n{{ website_name }", sample_variables())


def test_a_subject_that_renders_to_a_line_break_is_refused():
    values = {**sample_variables(), "website_name": "Shop\r\nBcc: victim@example.com"}
    with pytest.raises(TemplateError, match="The subject has a line break"):
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


TRUNCATE_MISUSES = [
    "{{ signature|truncate(5, true, '" + "x" * 99 + "') }}",  # end longer than the length
    "{{ signature|truncate(5, true, '" + "x" * 11 + "') }}",
    "{{ signature|truncate(2, true, '...') }}",
    "{{ signature|truncate(-1) }}",
    "{{ signature|truncate(0) }}",
    "{{ signature|truncate(5001) }}",
    "{{ signature|truncate(20, leeway=-1) }}",
    "{{ signature|truncate(20, false, '...', 101) }}",
    "{{ signature|truncate(20, end=signature) }}",  # a value of unknown length
    "{{ signature|truncate(signature) }}",
    "{{ signature|truncate(20.5) }}",
    "{{ signature|truncate(true) }}",
    "{{ signature|truncate(20, 'yes') }}",
    "{{ signature|truncate(20, false, none) }}",
    "{{ signature|truncate(20, false, '...', 0, 1) }}",
    "{{ signature|truncate(20, length=30) }}",
    "{{ signature|truncate(20, size=30) }}",
]


@pytest.mark.parametrize("source", TRUNCATE_MISUSES)
def test_truncate_arguments_jinja_would_assert_on_are_refused_with_a_message(source):
    with pytest.raises(TemplateError) as refused:
        render("Hello", source, sample_variables())
    assert str(refused.value).startswith("The body cannot be used. It gives the filter truncate")


def test_truncate_within_its_bounds_works():
    values = {**sample_variables(), "signature": "one two three four five six"}
    for source, expected in [
        ("{{ signature|truncate(25) }}", "one two three four five six"),  # within the leeway
        ("{{ signature|truncate(12, leeway=0) }}", "one two..."),
        ("{{ signature|truncate(12, true, '…', 0) }}", "one two thr…"),
        ("{{ signature|truncate(length=5, killwords=true, end='', leeway=0) }}", "one t"),
        ("{{ signature|truncate(1, true, '', 0) }}", "o"),
    ]:
        assert render("Hi", source, values)[1] == expected, source


def test_any_unexpected_error_while_rendering_is_a_template_error(monkeypatch, caplog):
    """Defence in depth: whatever a filter raises (an assertion, say) is a TemplateError."""
    from postroom import mail_templates

    def broken(_value):
        raise AssertionError("expected something")

    monkeypatch.setitem(mail_templates._ENV.filters, "upper", broken)
    mail_templates._compiled.cache_clear()
    try:
        with pytest.raises(TemplateError) as refused:
            render("Hi", "{{ signature|upper }}", sample_variables())
    finally:
        mail_templates._compiled.cache_clear()
    assert str(refused.value) == (
        "The body cannot be used. It cannot be rendered (an unexpected error; the server log "
        "has the details)."
    )
    assert "expected something" in caplog.text
