"""Where a click goes: the store for the visitor's device, or an allowed override (pure).

The rule that matters most here is the redirect rule: no click ever redirects to a host the app
owner did not configure (an open redirect on a tracking domain is a phishing gift). An `af_r`
or `af_web_dp` is followed only when it is a plain http(s) URL whose host is, exactly, the host
of one of the app's destinations or one of its `allowed_redirect_hosts`; subdomains are not
implied. A refused one is ignored and the click flagged `redirect_rejected`.

The routing order (http-api.md section 1, `GET /c/{app_key}`):

1. `af_r`, when allowed, whatever the device;
2. `platform=<name>` when the app has that destination (a CTA names its own store);
3. the device: iOS -> `ios`; Android -> `android` (with the Play `referrer` carrying our click
   id), else `apk`;
4. anything else (desktop): `af_web_dp` when allowed, else the app's `web` URL, else the page
   of ours the click came from, else the first store listing the app has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit

from app.vocabulary import REFERRER_CLICK_PARAM

# The campaign fields copied into the Play referrer, so the install knows them even if our click
# row were gone. Order is the order they are written in.
REFERRER_FIELDS = ("pid", "c", "af_c_id", "af_adset", "af_adset_id", "af_ad", "af_ad_id")
# What a click that found no store of the visitor's device is recorded as.
WEB = "web"
FLAG_REDIRECT_REJECTED = "redirect_rejected"


@dataclass(frozen=True)
class Destination:
    url: str
    # The destination the click was routed to: a destination name of the app, or "web".
    platform: str
    # "redirect_rejected" when an af_r / af_web_dp was refused under the host rule.
    flags: tuple[str, ...] = ()


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.lower() if host else None


def allowed_hosts(app_config: Mapping[str, Any]) -> frozenset[str]:
    """Hosts of the app's own destinations plus its `allowed_redirect_hosts`."""
    hosts = {h.lower() for h in app_config.get("allowed_redirect_hosts", [])}
    for dest in app_config.get("destinations", {}).values():
        for key in ("store_url", "url"):
            host = _host(dest.get(key))
            if host:
                hosts.add(host)
    return frozenset(hosts)


def plain_http_url(url: str) -> SplitResult | None:
    """`url` split, when it is an http(s) URL with a host that every browser reads as Python's
    parser does; else None.

    Strict on purpose: anything a browser might read differently is refused rather than
    reasoned about. Backslashes, credentials, whitespace and control characters are the
    classic ways to make a browser see another host than the one a naive parser saw; so is
    "https:/evil.example", which browsers guess at and we do not.
    """
    if "\\" in url or any(ch <= " " or ch == "\x7f" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    if not url.lower().startswith(f"{parts.scheme}://"):
        return None
    return parts


def safe_redirect(url: str | None, hosts: frozenset[str]) -> str | None:
    """`url` when it is a plain http(s) URL on exactly one of `hosts`, else None (a false "no"
    costs one redirect; a false "yes" is an open redirect)."""
    if not url:
        return None
    url = url.strip()
    parts = plain_http_url(url)
    return url if parts and parts.hostname and parts.hostname.lower() in hosts else None


def android_referrer(click_id: str | None, params: Mapping[str, str]) -> str:
    """The Play install referrer string: our click id, then the campaign fields present."""
    pairs = [(REFERRER_CLICK_PARAM, click_id)] if click_id else []
    pairs += [(k, params[k]) for k in REFERRER_FIELDS if params.get(k)]
    return urlencode(pairs)


def with_query(url: str, extra: str) -> str:
    """`url` with `extra` (an encoded query) appended, before any fragment."""
    if not extra:
        return url
    base, hash_mark, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{extra}{hash_mark}{fragment}"


def platform_for(os_family: str | None, forced: str | None, app_config: Mapping[str, Any]) -> str:
    """The destination platform: `platform=` when the app has it, else the device's store,
    else "web"."""
    destinations = app_config.get("destinations", {})
    if forced and forced.strip().lower() in destinations:
        return forced.strip().lower()
    if os_family == "ios" and "ios" in destinations:
        return "ios"
    if os_family == "android":
        if "android" in destinations:
            return "android"
        if "apk" in destinations:
            return "apk"
    return WEB


def choose(
    app_config: Mapping[str, Any],
    *,
    os_family: str | None,
    forced_platform: str | None,
    params: Mapping[str, str],
    click_id: str | None,
    fallback_url: str | None,
) -> Destination:
    """The click's destination (see the module docstring for the order).

    `click_id` is None for a click that is not recorded (HEAD): its Play referrer then carries
    no id. `fallback_url` is the page of ours the click came from, if any.
    """
    hosts = allowed_hosts(app_config)
    destinations = app_config.get("destinations", {})
    platform = platform_for(os_family, forced_platform, app_config)
    flags: list[str] = []

    af_r = params.get("af_r")
    if af_r:
        allowed = safe_redirect(af_r, hosts)
        if allowed:
            return Destination(allowed, platform)
        flags.append(FLAG_REDIRECT_REJECTED)

    if platform != WEB:
        dest = destinations[platform]
        if platform == "android":
            referrer = urlencode({"referrer": android_referrer(click_id, params)})
            return Destination(with_query(dest["store_url"], referrer), platform, tuple(flags))
        return Destination(dest.get("store_url") or dest["url"], platform, tuple(flags))

    web_dp = params.get("af_web_dp")
    if web_dp:
        allowed = safe_redirect(web_dp, hosts)
        if allowed:
            return Destination(allowed, WEB, tuple(flags))
        if FLAG_REDIRECT_REJECTED not in flags:
            flags.append(FLAG_REDIRECT_REJECTED)
    # A desktop visitor of an app with no web destination goes back to the page they came from,
    # else to the first store listing (App Store and Play listings both open on desktop).
    web = destinations.get(WEB)
    stores = [d.get("store_url") or d.get("url") for d in destinations.values()]
    url = (web and web["url"]) or fallback_url or next(iter(stores), None) or "/"
    return Destination(url, WEB, tuple(flags))
