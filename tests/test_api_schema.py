"""Schemathesis drives the live API (WSGI) from the OpenAPI document it serves: no input,
however odd, makes a server error, and every answer is one the document promises.

Each operation is fuzzed with Hypothesis three ways: data that fits the document (random ids),
the same with the ids of stored rows, and data that breaks the document. Deterministic
(derandomize) and bounded (max_examples per pass); DELETE operations run last, so that the
rows they remove were there for the others.

schemathesis.pytest.from_fixture / schema.parametrize() is not used: with pytest 9 its
subtest reporting fails (AttributeError: 'Function' object has no attribute '_nodeid'), so
the operations are walked here with `operation.as_strategy()`.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from domain.projects import create_project
from domain.tokens import create_api_token
from postroom import login_throttle
from tests.mail import message
from tests.test_api import deliver

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    ignored_auth,
]
STORED_IDS = {"entry_id": 1, "project_id": 1, "address": "anna@bakery.example"}


@pytest.fixture(autouse=True)
def _wrong_tokens_unthrottled(monkeypatch):
    """The ignored_auth check sends a wrong token after every case, hundreds from one address;
    their throttling (429 after 20, tests/test_login_throttle.py) is not what this test checks."""
    monkeypatch.setattr(login_throttle, "API_ADDRESS", login_throttle.Budget("t:", 1_000_000))


@pytest.fixture
def member_token(web) -> str:
    """A member's token over an account with a few projects and entries."""
    create_project(
        web.account.id,
        "Bakery Miller",
        domain="bakery.example",
        customer_addresses=["anna@bakery.example"],
    )
    create_project(web.account.id, "Garden Lind", status="review")
    create_project(web.account.id, "Old shop", status="archived")
    deliver(
        web.account,
        message("Opening hours", sender="anna@bakery.example"),
        message("Enquiry", sender="tom@elsewhere.example"),
        message("Buy now", sender="spam@junk.example"),
        message("Photos", sender="anna@bakery.example"),
        message("Invoice", sender="anna@bakery.example"),
    )
    return create_api_token(web.users["member"])


def fuzz(operation, token: str, mode: GenerationMode, path_parameters: dict | None) -> None:
    """Run one Hypothesis pass over an operation; raise on the first broken promise."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    run()


def test_the_api_keeps_the_promises_of_its_openapi_document(web, member_token):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", web.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")  # these last
    assert len(operations) >= 18
    broken = {}
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        passes = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
        if names:
            stored = {name: STORED_IDS[name] for name in names}
            passes.insert(1, (GenerationMode.POSITIVE, stored))
        for mode, path_parameters in passes:
            try:
                fuzz(operation, member_token, mode, path_parameters)
            except Exception as failure:  # noqa: BLE001 - collected, so one run shows them all
                label = f"{operation.label} {mode.value} {path_parameters or ''}"
                broken[label] = f"{failure.__class__.__name__}: {str(failure)[:2000]}"
    assert not broken, "\n\n".join(f"{label}\n{text}" for label, text in broken.items())
