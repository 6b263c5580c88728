"""Where a click goes: the store for the visitor's device, or an allowed override (pure).

The rule that matters most here is the redirect rule: no click ever redirects to a host the app
owner did not configure (an open redirect on a tracking domain is a phishing gift).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from app.attribution import REFERRER_CLICK_PARAM

# The campaign fields copied into the Play referrer, so the install knows them even if our click
# row were gone. Order is the order they are written in.
REFERRER_FIELDS = ("pid", "c", "af_c_id", "af_adset", "af_adset_id", "af_ad", "af_ad_id")


@dataclass(frozen=True)
class Destination:
    url: str
    platform: str | None
    # "redirect_rejected" when an af_r / af_web_dp was refused under the host rule.
    flags: tuple[str, ...] = ()


def allowed_hosts(app_config: Mapping[str, Any]) -> frozenset[str]:
    """Hosts of the app's own destinations plus its `allowed_redirect_hosts`."""
    hosts = {h.lower() for h in app_config.get("allowed_redirect_hosts", [])}
    for dest in app_config.get("destinations", {}).values():
        for key in ("store_url", "url"):
            url = dest.get(key)
            if url:
                host = urlsplit(url).hostname
                if host:
                    hosts.add(host.lower())
    return frozenset(hosts)


def safe_redirect(url: str | None, hosts: frozenset[str]) -> str | None:
    """`url` when it is http(s) on one of `hosts`, else None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    # Backslashes and credentials are the classic ways to make a browser see another host
    # than the one a naive parser saw.
    if "\\" in url or "@" in parts.netloc:
        return None
    return url.strip() if parts.hostname.lower() in hosts else None


def android_referrer(click_id: str | None, params: Mapping[str, str]) -> str:
    pairs = [(REFERRER_CLICK_PARAM, click_id)] if click_id else []
    pairs += [(k, params[k]) for k in REFERRER_FIELDS if params.get(k)]
    return urlencode(pairs)


def with_query(url: str, extra: str) -> str:
    if not extra:
        return url
    base, hash_mark, fragment = url.partition("#")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}{extra}{hash_mark}{fragment}"


def platform_for(os_family: str | None, forced: str | None, app_config: Mapping[str, Any]) -> str:
    """The destination platform: `platform=` when the app has it, else the device's OS."""
    destinations = app_config.get("destinations", {})
    if forced and forced.lower() in destinations:
        return forced.lower()
    if os_family == "ios" and "ios" in destinations:
        return "ios"
    if os_family == "android":
        if "android" in destinations:
            return "android"
        if "apk" in destinations:
            return "apk"
    return "desktop"


def choose(
    app_config: Mapping[str, Any],
    *,
    os_family: str | None,
    forced_platform: str | None,
    params: Mapping[str, str],
    click_id: str | None,
    fallback_url: str | None,
) -> Destination:
    """The click's destination (http-api.md section 1, `GET /c/{app_key}`)."""
    hosts = allowed_hosts(app_config)
    flags: list[str] = []
    af_r = params.get("af_r")
    if af_r:
        allowed = safe_redirect(af_r, hosts)
        if allowed:
            return Destination(allowed, forced_platform, ())
        flags.append("redirect_rejected")

    destinations = app_config.get("destinations", {})
    platform = platform_for(os_family, forced_platform, app_config)
    dest = destinations.get(platform)
    if platform == "android" and dest:
        referrer = urlencode({"referrer": android_referrer(click_id, params)})
        return Destination(with_query(dest["store_url"], referrer), platform, tuple(flags))
    if dest:
        return Destination(dest.get("store_url") or dest["url"], platform, tuple(flags))

    web_dp = params.get("af_web_dp")
    if web_dp:
        allowed = safe_redirect(web_dp, hosts)
        if allowed:
            return Destination(allowed, "desktop", tuple(flags))
        flags.append("redirect_rejected")
    # A desktop visitor of an app with no web destination goes back to the page they came from,
    # else to the first store listing (App Store and Play listings both open on desktop).
    web = destinations.get("web")
    stores = [d.get("store_url") or d.get("url") for d in destinations.values()]
    url = (web and web["url"]) or fallback_url or next(iter(stores), None) or "/"
    return Destination(url, "desktop", tuple(dict.fromkeys(flags)))
