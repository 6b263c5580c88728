"""A made-up website in one Chromium profile, for testing the snippet without a server.

Playwright's `context.route` answers every request: pages on https://landing.example (one small
HTML page for any path), the snippet files and the impression collector on
https://track.example.com. Impressions are recorded, never sent anywhere.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from app.paths import SMARTSCRIPT_DIR
from tests.mapping_vectors import LANDING_ORIGIN, PVID, SNIPPET_ORIGIN

SNIPPET_SOURCE = (SMARTSCRIPT_DIR / "smartscript.js").read_text(encoding="utf-8")
BANNER_SOURCE = (SMARTSCRIPT_DIR / "banner.js").read_text(encoding="utf-8")

# What /qr.svg answers here: any small SVG, so the <img> loads without a console error.
QR_STAND_IN = '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"></svg>'

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="gw-pvid" content="{pvid}"><title>Demo Game</title>
<script src="{origin}/smartscript.js"{attrs}></script>{head}
</head><body>{body}</body></html>"""


@dataclass
class Beacon:
    method: str
    url: str
    content_type: str | None
    body: str | None

    def json(self) -> Any:
        assert self.body is not None
        return json.loads(self.body)


@dataclass
class Site:
    """One browser context on the made-up origins, with what the page reported."""

    context: Any
    page: Any
    beacons: list[Beacon] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    console_warnings: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def visit(self, path: str, referrer: str = "") -> None:
        self.page.goto(LANDING_ORIGIN + path, referer=referrer or None)

    def call(self, member: str, args: Any) -> Any:
        """Gangway.<member>(args) in the page; a {clickURL} answer is unwrapped. The arguments
        travel as ASCII JSON, so a lone surrogate reaches the page intact."""
        return self.page.evaluate(
            """([member, json]) => {
                const r = window.Gangway[member](JSON.parse(json));
                return r && typeof r === 'object' ? r.clickURL : r;
            }""",
            [member, json.dumps(args, ensure_ascii=True)],
        )


def open_site(
    browser: Any,
    *,
    snippet: str = SNIPPET_SOURCE,
    script_attrs: str = "",
    head: str = "",
    body: str = "<h1>Demo Game</h1><p>Play free.</p>",
    init_script: str | None = None,
    **context_options: Any,
) -> Site:
    context = browser.new_context(**context_options)
    page_html = PAGE.format(
        pvid=html.escape(PVID), origin=SNIPPET_ORIGIN, attrs=script_attrs, head=head, body=body
    )
    site = Site(context=context, page=None)

    def landing(route: Any) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=page_html)

    def tracker(route: Any) -> None:
        request = route.request
        path = request.url.removeprefix(SNIPPET_ORIGIN).split("?")[0]
        if path == "/smartscript.js":
            route.fulfill(status=200, content_type="text/javascript", body=snippet)
        elif path == "/banner.js":
            route.fulfill(status=200, content_type="text/javascript", body=BANNER_SOURCE)
        elif path.startswith("/i/"):
            route.fulfill(status=202, content_type="application/json", body='{"id": "imp"}')
        elif path == "/qr.svg":
            route.fulfill(status=200, content_type="image/svg+xml", body=QR_STAND_IN)
        else:
            route.fulfill(status=404, body="")

    context.route(LANDING_ORIGIN + "/**", landing)
    context.route(SNIPPET_ORIGIN + "/**", tracker)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.on("pageerror", lambda error: site.page_errors.append(str(error)))

    def request(request: Any) -> None:
        # Recorded from the page's request events rather than the route handler: events arrive
        # in order, so once a later request has been seen every earlier beacon is listed.
        if request.url.startswith(SNIPPET_ORIGIN + "/i/"):
            site.beacons.append(
                Beacon(
                    request.method,
                    request.url,
                    request.headers.get("content-type"),
                    request.post_data,
                )
            )

    page.on("request", request)

    def console(message: Any) -> None:
        if message.type == "error":
            site.console_errors.append(message.text)
        elif message.type == "warning":
            site.console_warnings.append(message.text)

    page.on("console", console)
    site.page = page
    return site
