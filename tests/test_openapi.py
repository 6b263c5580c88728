"""`GET /openapi.json` is kept true by walking the route table against it, both ways."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.routing import Route
from starlette.testclient import TestClient

from app.server import routes
from app.web.openapi import UNDOCUMENTED_METHODS, build_document, path_template
from tests.openapi_check import answers_as_documented, resolve

# Answers that are not errors of the API, and so keep their own shape (see app/web/openapi.py).
NOT_API_ERRORS = {
    ("/lp/{slug}", "get", "404"),  # an HTML page for people
    ("/healthz", "get", "503"),  # the health answer itself, for load balancers
}
OWNER_PREFIXES = (
    "/api/v1/apps",
    "/api/v1/pages",
    "/api/v1/installs/",
    "/api/v1/postbacks",
    "/api/v1/partners/",
    "/api/v1/reports",
    "/api/v1/raw",
    "/api/v1/cost",
    "/api/v1/privacy",
)
SDK_PATHS = {"/api/v1/installs", "/api/v1/events"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_document(routes())


def routed() -> dict[tuple[str, str], Route]:
    """(OpenAPI path template, lower-case method) of every route, HEAD aside (automatic with
    GET, and not documented), and the console's HTML screens aside (`include_in_schema=False`,
    all under /admin: pages for people, not the API)."""
    found: dict[tuple[str, str], Route] = {}
    for route in routes():
        assert isinstance(route, Route) and route.methods is not None
        if not route.include_in_schema:
            assert route.path.startswith("/admin"), f"{route.path}: only /admin is undocumented"
            continue
        for method in route.methods - UNDOCUMENTED_METHODS:
            found[(path_template(route.path), method.lower())] = route
    return found


def documented(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_every_route_is_documented_and_nothing_else(document: dict[str, Any]) -> None:
    assert set(routed()) - set(documented(document)) == set(), "routes without a description"
    assert set(documented(document)) - set(routed()) == set(), "descriptions without a route"


def test_path_templates_drop_starlette_converters() -> None:
    assert path_template("/static/{path:path}") == "/static/{path}"
    assert path_template("/api/v1/apps/{app_key}") == "/api/v1/apps/{app_key}"


def test_operation_ids_name_the_handler_and_are_unique(document: dict[str, Any]) -> None:
    operations = documented(document)
    for key, route in routed().items():
        module = route.endpoint.__module__.rsplit(".", 1)[-1]
        assert operations[key]["operationId"].startswith(f"{module}.{route.endpoint.__name__}")
    ids = [operation["operationId"] for operation in operations.values()]
    assert len(ids) == len(set(ids))


def test_every_path_parameter_is_declared(document: dict[str, Any]) -> None:
    for (path, method), operation in documented(document).items():
        in_path = [p for p in operation.get("parameters", []) if p["in"] == "path"]
        assert {p["name"] for p in in_path} == set(re.findall(r"\{(\w+)\}", path)), (method, path)
        assert all(p["required"] for p in in_path), (method, path)


def test_every_error_is_the_shared_error_shape(document: dict[str, Any]) -> None:
    error_ref = "#/components/schemas/Error"
    for (path, method), operation in documented(document).items():
        # A success: a 2xx, or the 302 of a click.
        assert any(status[0] in "23" for status in operation["responses"]), (method, path)
        for status, response in operation["responses"].items():
            if status[0] in "23" or (path, method, status) in NOT_API_ERRORS:
                continue
            assert status.startswith("4"), (method, path, status)
            content = resolve(document, response)["content"]
            assert list(content) == ["application/json"], (method, path, status)
            assert content["application/json"]["schema"] == {"$ref": error_ref}


def test_error_schema_matches_what_errors_answer(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["Error"]
    assert set(schema["required"]) == set(schema["properties"]) == {"error", "message", "field"}


def test_security_by_audience(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "apiKey"}
    assert {s.get("scheme") for s in schemes.values()} == {"bearer", None}
    session = schemes["consoleSession"]
    assert (session["in"], session["name"]) == ("cookie", "gw_session")
    for (path, method), operation in documented(document).items():
        if path in SDK_PATHS:
            expected = [{"sdkKey": []}]
        elif path.startswith(OWNER_PREFIXES):
            expected = [{"adminToken": []}, {"consoleSession": []}]
        else:
            expected = []
        assert operation["security"] == expected, (method, path)
        if expected:
            assert "401" in operation["responses"], (method, path)


def test_json_bodies_are_described(document: dict[str, Any]) -> None:
    operations = documented(document)
    for key in (
        ("/api/v1/installs", "post"),
        ("/api/v1/events", "post"),
        ("/api/v1/apps/{app_key}", "put"),
        ("/api/v1/pages/{slug}", "put"),
        ("/api/v1/postbacks/retry", "post"),
    ):
        body = operations[key]["requestBody"]
        schema = resolve(document, body["content"]["application/json"]["schema"])
        assert schema["required"] and schema["properties"], key
        assert {"413", "415"} <= set(operations[key]["responses"]), key


def test_real_answers_match_their_documented_schemas(
    client: TestClient, admin: dict[str, str], sdk: dict[str, str], document: dict[str, Any]
) -> None:
    def check(method: str, path: str, url: str | None = None, **kwargs: Any) -> dict[str, Any]:
        r = client.request(method, url or path, follow_redirects=False, **kwargs)
        return answers_as_documented(document, path, method.lower(), r)

    check("POST", "/i/{app_key}", "/i/demo", json={"url": "https://example.com/?pid=x"})
    check("GET", "/c/{app_key}", "/c/demo?pid=tiktokweb_int")
    install = {"app_key": "demo", "platform": "android", "app_instance_id": "openapi-1"}
    answer = check("POST", "/api/v1/installs", json=install, headers=sdk)
    event = {"app_key": "demo", "app_instance_id": "openapi-1", "event_name": "af_purchase"}
    check("POST", "/api/v1/events", json=event, headers=sdk)
    check("POST", "/api/v1/events", json=event | {"app_instance_id": "nobody"}, headers=sdk)
    check("POST", "/api/v1/installs", json=install, headers={"Authorization": "Bearer wrong"})
    check("GET", "/api/v1/installs/{install_id}", f"/api/v1/installs/{answer['install_id']}",
          headers=admin)  # fmt: skip
    check("GET", "/api/v1/apps", headers=admin)
    check("GET", "/api/v1/apps", headers={})
    check("GET", "/api/v1/apps/{app_key}", "/api/v1/apps/demo", headers=admin)
    check("GET", "/api/v1/apps/{app_key}", "/api/v1/apps/nope", headers=admin)
    check("PUT", "/api/v1/apps/{app_key}", "/api/v1/apps/bad", json={"name": 1}, headers=admin)
    check("PUT", "/api/v1/apps/{app_key}", "/api/v1/apps/bad", content="x", headers=admin)
    integration = "/api/v1/apps/{app_key}/integrations/tiktokweb_int"
    check("GET", integration, integration.replace("{app_key}", "demo"), headers=admin)
    check("GET", "/api/v1/pages", headers=admin)
    check("GET", "/api/v1/pages/{slug}", "/api/v1/pages/demo", headers=admin)
    check("POST", "/api/v1/postbacks/retry", json={"app_key": "demo"}, headers=admin)
    check("GET", "/api/v1/postbacks/{postback_id}", "/api/v1/postbacks/nope", headers=admin)
    check("GET", "/healthz")
    check("GET", "/qr.svg", "/qr.svg?u=https://elsewhere.example/")


def test_served_publicly_as_json_and_cached(client: TestClient, document: dict[str, Any]) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert "max-age" in r.headers["cache-control"]
    assert r.json() == document
    again = client.get("/openapi.json", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
