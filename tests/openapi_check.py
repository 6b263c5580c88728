"""Checking real answers against the OpenAPI document (used by every suite that checks that
its answers are the ones documented)."""

from __future__ import annotations

from typing import Any

from openapi_schema_validator import OAS31Validator


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, *parts = node["$ref"].split("/")
        for part in parts:
            document = document[part]
        node = document
    return node


def answers_as_documented(
    document: dict[str, Any], path: str, method: str, response: Any
) -> dict[str, Any]:
    """Check a real answer against the schema its operation documents for its status."""
    documented_response = document["paths"][path][method]["responses"].get(
        str(response.status_code)
    )
    assert documented_response is not None, (method, path, response.status_code, response.text)
    content = resolve(document, documented_response).get("content", {})
    media = response.headers.get("content-type", "").split(";")[0]
    if not content:  # documented as having no body (a redirect, a 204)
        assert not response.content, (method, path, response.status_code)
        return {}
    assert media in content or "*/*" in content, (method, path, media)
    body: dict[str, Any] = {}
    if media == "application/json":
        body = response.json()
        # The document is the root, so the schema's "#/components/..." references resolve.
        OAS31Validator({**document, **content[media]["schema"]}).validate(body)
    return body
