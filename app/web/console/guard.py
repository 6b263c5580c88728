"""What every console screen shares: who is asking, CSRF, rendering, form errors.

`screen()` wraps a handler so that no screen can forget the rules of console.md 1-2:

- no session: a redirect to the login form (303, remembering where the owner was going);
- a state-changing request without the session's CSRF token, or from another site: 403;
- `admin=True`: a viewer gets 403; `full_admin=True`: so does an admin limited to some apps;
- an `ApiError` from the shared owner functions (a 404 for an app of someone else's, say) is
  the console's error page, never JSON or a trace.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.accounts import Owner
from app.services import Services, services
from app.store.records import SessionRecord
from app.web.errors import ApiError, read_body
from app.web.sessions import CSRF_FIELD, SAFE_METHODS, csrf_ok, current_session

LOGIN_PATH = "/admin/login"
# Form bodies are small: a page config is the largest, well under this.
MAX_FORM = 256 * 1024
# A screen that takes a file (a cost CSV) takes what the API takes: a year of daily rows for
# thousands of ads.
MAX_UPLOAD = 20 * 1024 * 1024
_NEXT_RE = re.compile(r"^/admin(/[A-Za-z0-9._~/%-]*)?(\?[A-Za-z0-9._~=&%+-]*)?$")

Handler = Callable[["Screen"], Awaitable[Response]]


@dataclass
class Screen:
    """One console request: the request, the services, the owner, the session, the form."""

    request: Request
    svc: Services
    owner: Owner
    session: SessionRecord
    form: FormData | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def upload(self, name: str) -> bytes | None:
        """The bytes of the form's file `name` (None: no file chosen)."""
        value = self.form.get(name) if self.form is not None else None
        if not isinstance(value, UploadFile) or not value.filename:
            return None
        source = value.file
        return source.getvalue() if isinstance(source, io.BytesIO) else None

    def checked(self, name: str) -> bool:
        return self.form is not None and self.form.get(name) not in (None, "", "off")

    def render(
        self, template: str, context: Mapping[str, Any] | None = None, status: int = 200
    ) -> Response:
        return render(self.request, self.svc, template, self.owner, self.session, context, status)

    def redirect(self, url: str, flash: str | None = None) -> Response:
        if flash:
            url += ("&" if "?" in url else "?") + "done=" + quote(flash)
        return RedirectResponse(url, status_code=303, headers=console_headers(self.svc))


def console_headers(svc: Services) -> dict[str, str]:
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "same-origin"}
    if svc.settings.public_url.lower().startswith("https://"):
        headers["Strict-Transport-Security"] = "max-age=31536000"
    return headers


def render(
    request: Request,
    svc: Services,
    template: str,
    owner: Owner | None,
    session: SessionRecord | None,
    context: Mapping[str, Any] | None = None,
    status: int = 200,
) -> Response:
    done = request.query_params.get("done")
    full = {
        "owner": owner,
        "csrf_token": session.csrf_token if session else "",
        "nav": request.url.path,
        "done": done[:200] if done else None,
        "errors": {},
        "error": None,
        **(context or {}),
    }
    return svc.templates.TemplateResponse(
        request, template, full, status_code=status, headers=console_headers(svc)
    )


def error_page(request: Request, status: int, message: str, owner: Owner | None = None) -> Response:
    svc = services(request)
    return render(
        request,
        svc,
        "console/error.html",
        owner,
        None,
        {"status": status, "message": message},
        status,
    )


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = LOGIN_PATH if target in ("/admin", "/admin/") else f"{LOGIN_PATH}?next={quote(target)}"
    return RedirectResponse(url, status_code=303, headers=console_headers(services(request)))


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a console path of ours, never another site."""
    if value and _NEXT_RE.fullmatch(value) and not urlsplit(value).netloc:
        return value
    return "/admin"


async def _read_multipart(request: Request) -> FormData:
    """A multipart form of one file at most MAX_UPLOAD bytes, read into memory (the form's
    temporary files are closed before the handler runs)."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_UPLOAD:
        raise ApiError(413, "too_large", f"The file is over {MAX_UPLOAD // (1024 * 1024)} MiB.")
    pairs: list[tuple[str, str | UploadFile]] = []
    try:
        async with request.form(max_files=1, max_fields=20) as form:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read(MAX_UPLOAD + 1)
                    if len(data) > MAX_UPLOAD:
                        raise ApiError(
                            413, "too_large", f"The file is over {MAX_UPLOAD // (1024 * 1024)} MiB."
                        )
                    value = UploadFile(io.BytesIO(data), filename=value.filename or "")
                pairs.append((key, value))
    except MultiPartException as exc:
        raise ApiError.invalid("file", f"The form could not be read: {exc.message}") from None
    return FormData(pairs)


async def read_form(request: Request, *, upload: bool = False) -> FormData:
    """A urlencoded form, at most MAX_FORM bytes (a 413 past that); with `upload`, a
    multipart form with a file too."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if upload and content_type == "multipart/form-data":
        return await _read_multipart(request)
    if content_type != "application/x-www-form-urlencoded":
        return FormData()
    raw = await read_body(request, MAX_FORM)
    pairs: list[tuple[str, str | UploadFile]] = list(
        parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    )
    return FormData(pairs)


def screen(
    *, admin: bool = False, full_admin: bool = False, upload: bool = False
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            found = await current_session(request)
            if found is None:
                return login_redirect(request)
            session, owner = found
            form = None
            if request.method not in SAFE_METHODS:
                try:
                    form = await read_form(request, upload=upload)
                except ApiError as exc:
                    return error_page(request, exc.status, exc.message, owner)
                if not csrf_ok(request, session, form.get(CSRF_FIELD)):
                    return error_page(
                        request,
                        403,
                        "This form has expired or came from another site: "
                        "reload the page and try again.",
                        owner,
                    )
            if (admin or full_admin) and not owner.is_admin:
                return error_page(
                    request, 403, "Viewers can read reports and receipts only.", owner
                )
            if full_admin and not owner.is_full_admin:
                return error_page(request, 403, "Only an admin of every app manages users.", owner)
            try:
                return await handler(Screen(request, services(request), owner, session, form))
            except ApiError as exc:
                # Forms catch their 400s to show them in place; anything else is a page too.
                return error_page(request, exc.status, exc.message, owner)

        return endpoint

    return wrap


def field_errors(exc: ApiError) -> dict[str, str]:
    """An API error as {form field name: message}: the field's JSON path is the form field's
    name, so the message shows next to it (a list item's error goes to its list)."""
    if exc.field is None:
        return {"": exc.message}
    name = exc.field
    # A validator's message starts with the field's path; next to the field it need not.
    message = exc.message.removeprefix(name).lstrip(" :") or exc.message
    out = {name: message[:1].upper() + message[1:]}
    base = re.sub(r"\[\d+\]$", "", name)
    if base != name:
        out.setdefault(base, out[name])
    return out
