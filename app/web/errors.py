"""Error answers and request-body reading, the same for every JSON endpoint.

Every error is JSON `{"error", "message", "field"}` with a 4xx status (http-api.md). Handlers
raise `ApiError`, or let a body reader's `FieldError` through (a 400 naming the field); anything
else escaping a handler is a bug and answers 500 with no detail.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from app import jsonfast
from app.fields import FieldError

log = logging.getLogger("gangway.web")

MAX_BODY = 64 * 1024


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.field = field

    @classmethod
    def invalid(cls, field: str | None, message: str) -> ApiError:
        return cls(400, "invalid", message, field)

    @classmethod
    def from_field(cls, exc: FieldError) -> ApiError:
        return cls(400, "invalid", exc.message, exc.field)


def _printable(text: str | None) -> str | None:
    """`text` as UTF-8 can carry it: a lone surrogate from the request (a field path naming
    the client's own key, say) is written as its escape, not left to fail the answer."""
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(status: int, error: str, message: str, field: str | None = None) -> Response:
    return JSONResponse(
        {"error": error, "message": _printable(message), "field": _printable(field)},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.error, exc.message, exc.field)


async def field_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FieldError)
    return error_response(400, "invalid", exc.message, exc.field)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, error, str(exc.detail))


# Set in the request's state when the client went away mid-request: the request counter counts
# it apart (it is no error of ours, and no answer reaches anyone).
DISCONNECTED = "client_disconnected"


async def client_disconnect_handler(request: Request, exc: Exception) -> Response:
    """A client that closed its connection before its body arrived (a phone losing signal, a
    slow client giving up): one log line, nothing stored (the handler had read no whole body),
    counted apart from errors. The answer goes nowhere; 499 is nginx's "client closed"."""
    assert isinstance(exc, ClientDisconnect)
    request.scope.setdefault("state", {})[DISCONNECTED] = True
    log.info("client disconnected mid-body: %s %s", request.method, request.url.path)
    return Response(status_code=499)


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused with 413 past `limit` bytes without reading the rest into memory."""
    declared = request.headers.get("content-length")
    if declared is not None:
        # isdigit() alone takes "²" and other digits int() refuses.
        if not (declared.isascii() and declared.isdigit()):
            raise ApiError(400, "invalid", "Content-Length is not a number")
        if int(declared) > limit:
            raise ApiError(413, "too_large", f"body over {limit // 1024} KiB")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"body over {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(
    request: Request, *, allow_text_plain: bool = False, limit: int = MAX_BODY
) -> Any:
    """A JSON body. `text/plain` is allowed where browsers send beacons (no CORS preflight)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    allowed = {"application/json"} | ({"text/plain"} if allow_text_plain else set())
    if content_type not in allowed:
        raise ApiError(415, "unsupported_media_type", f"send {' or '.join(sorted(allowed))}")
    raw = await read_body(request, limit)
    try:
        return jsonfast.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    except ValueError:
        # Valid JSON Python refuses to read: an integer of more than 4,300 digits.
        raise ApiError(400, "invalid_json", "body has a number too long to read") from None
    except RecursionError:
        # Arrays or objects nested thousands deep (64 KiB of "[" is 65,536 levels).
        raise ApiError(400, "invalid_json", "body is nested too deeply") from None


def json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError.invalid(None, "body must be a JSON object")
    return value
