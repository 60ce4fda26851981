"""The OpenAPI document of /api/v1 is the one flask-smorest generates from the API's models.

Nothing in it is written by hand: the served JSON is the library's spec object of the app, each
schema in it is what apispec makes of the marshmallow model of that name, and every route of
the api blueprint is an operation of it (and nothing else is).
"""

from __future__ import annotations

import json
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from admin_ui import api_schemas

SAFE = {"GET", "HEAD", "OPTIONS"}


def served(web) -> dict:
    response = web.app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    return response.get_json()


def test_the_served_document_is_the_spec_flask_smorest_generated(web):
    library = web.app.extensions["flask-smorest"]["apis"][""]["ext_obj"]
    assert served(web) == json.loads(json.dumps(library.spec.to_dict()))
    assert library.spec.openapi_version.major == 3


def test_each_schema_of_the_document_is_apispec_s_rendering_of_its_model(web):
    document = served(web)
    fresh = APISpec("check", "1", "3.0.3", plugins=[MarshmallowPlugin()])
    names = sorted(document["components"]["schemas"])
    for name in names:
        if name not in fresh.components.schemas:  # a nested model registers itself
            fresh.components.schema(name, schema=getattr(api_schemas, name))
    rendered = fresh.to_dict()["components"]["schemas"]
    statuses = list(web.app.config["POSTROOM_SETTINGS"].ui.project_statuses)
    for name in names:
        found = document["components"]["schemas"][name]
        for field_name, field in getattr(api_schemas, name)._declared_fields.items():
            if isinstance(field, api_schemas.ProjectStatus):  # the app's configured statuses
                assert found["properties"][field_name].pop("enum") == statuses
        assert found == rendered[name], name
    assert {"Entry", "Project", "Error", "EntryAssign", "ProjectCreate", "MessageCreate"} <= set(
        names
    )


def test_every_route_of_the_api_is_an_operation_of_the_document_and_no_other(web):
    document = served(web)
    documented = {
        (path, method.upper()): operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }
    routes = {}
    for rule in web.app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            routes[(path, method)] = rule.endpoint.removeprefix("api.")
    assert len(routes) >= 20
    assert documented == routes
    for (path, method), _operation_id in routes.items():
        operation = document["paths"][path][method.lower()]
        answers = set(operation["responses"])
        if path == "/openapi.json":
            assert operation["security"] == []
            continue
        assert {"400", "401", "429"} <= answers, path
        assert ("403" in answers) == (method not in SAFE), path
        assert ("404" in answers) == ("{" in path or path == "/entries"), path
        assert ("422" in answers) == ("requestBody" in operation), path
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "{" + parameter["name"] + "}" in path
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "status"] and error["additionalProperties"] is False
