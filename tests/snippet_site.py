"""A made-up website in one Chromium profile, for testing the snippet without a server.

Playwright's `context.route` answers every request: pages on https://landing.example (one small
HTML page for any path), the snippet files and the impression collector on
https://track.example.com. Impressions are recorded, never sent anywhere. Both origins can be
moved, onto one origin too (a hosted page on a plain-http LAN host): the snippet's paths are
answered first there, every other path is the page.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.paths import SMARTSCRIPT_DIR
from app.web.pages import MAX_QR_URL
from tests.mapping_vectors import LANDING_ORIGIN, PVID, SNIPPET_ORIGIN

SNIPPET_SOURCE = (SMARTSCRIPT_DIR / "smartscript.js").read_text(encoding="utf-8")
BANNER_SOURCE = (SMARTSCRIPT_DIR / "banner.js").read_text(encoding="utf-8")

# What /qr.svg answers here: any small SVG, so the <img> loads without a console error; like
# the real one, it refuses (400, a console error) a link over MAX_QR_URL bytes.
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
    landing_origin: str = LANDING_ORIGIN
    snippet_origin: str = SNIPPET_ORIGIN
    beacons: list[Beacon] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, in order
    console_errors: list[str] = field(default_factory=list)
    console_warnings: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def visit(self, path: str, referrer: str = "") -> None:
        self.page.goto(self.landing_origin + path, referer=referrer or None)

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
    landing_origin: str = LANDING_ORIGIN,
    snippet_origin: str = SNIPPET_ORIGIN,
    **context_options: Any,
) -> Site:
    context = browser.new_context(**context_options)
    page_html = PAGE.format(
        pvid=html.escape(PVID), origin=snippet_origin, attrs=script_attrs, head=head, body=body
    )
    site = Site(
        context=context, page=None, landing_origin=landing_origin, snippet_origin=snippet_origin
    )

    def answer(route: Any) -> None:
        url = route.request.url
        path = url.split("?")[0].removeprefix(snippet_origin)
        on_snippet_origin = url.startswith(snippet_origin + "/")
        if on_snippet_origin and path == "/smartscript.js":
            route.fulfill(status=200, content_type="text/javascript", body=snippet)
        elif on_snippet_origin and path == "/banner.js":
            route.fulfill(status=200, content_type="text/javascript", body=BANNER_SOURCE)
        elif on_snippet_origin and path.startswith("/i/"):
            route.fulfill(status=202, content_type="application/json", body='{"id": "imp"}')
        elif on_snippet_origin and path == "/qr.svg":
            link = parse_qs(urlsplit(url).query).get("u", [""])[0]
            if len(link.encode("utf-8", "replace")) > MAX_QR_URL:
                route.fulfill(status=400, content_type="application/json", body="{}")
            else:
                route.fulfill(status=200, content_type="image/svg+xml", body=QR_STAND_IN)
        elif url.startswith(landing_origin + "/"):
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=page_html)
        else:
            route.fulfill(status=404, body="")

    for origin in {landing_origin, snippet_origin}:
        context.route(origin + "/**", answer)
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.on("pageerror", lambda error: site.page_errors.append(str(error)))

    def request(request: Any) -> None:
        # Recorded from the page's request events rather than the route handler: events arrive
        # in order, so once a later request has been seen every earlier beacon is listed.
        site.requests.append(request.url)
        if request.url.startswith(snippet_origin + "/i/"):
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
