"""The smart-script mapping rules: the Python twin of `smartscript/smartscript.js`.

A hosted landing page renders its CTA links on the server, so they work with JavaScript off; the
snippet then computes the same links in the browser. Both follow `spec/smartscript.md` and pass
the same vectors (`shared/vectors/mapping.json`, `tests/vectors/mapping_extra.json`), so a change
to one is a change to both.

The server sees only the request: incoming parameters come from the landing URL's query alone
(the snippet also remembers earlier pages in localStorage) and the stored external referrer is
the request's own `Referer` when it is on another origin than the page.

Bad input never raises out of the generators: like the snippet, they return None. Page and app
configuration is checked up front with `validate_af_parameters`, which raises `MappingError`
naming the offending field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from app.vocabulary import DEFAULT_TTCLID_SUB, DIRECT_PLATFORMS, PARTNER, TTCLID_SUBS

# What the snippet reports as `version` and writes as `af_ss_ver`. Not AppsFlyer's numbering
# (2.x), so raw data tells the two apart.
SNIPPET_VERSION = "gw-1.0.0"

# afParameters fields and the outgoing key each fills, in the order they are written.
FIELDS: tuple[tuple[str, str], ...] = (
    ("mediaSource", "pid"),
    ("campaign", "c"),
    ("channel", "af_channel"),
    ("ad", "af_ad"),
    ("adSet", "af_adset"),
    ("deepLinkValue", "deep_link_value"),
    *((f"afSub{n}", f"af_sub{n}") for n in range(1, 6)),
)
NAMED_KEYS: tuple[str, ...] = tuple(key for _, key in FIELDS)
# googleClickIdKey may name an af_subN, never one of these.
_NOT_FOR_GCLID = NAMED_KEYS[:6]

# Forwarded without any mapping; matched in any letter case, written as listed.
CLICK_IDS: tuple[str, ...] = ("ttclid", "gclid", "fbclid", "gbraid", "wbraid", "twclid", "ScCid")

TIKTOK_PRESET: dict[str, Any] = {
    "mediaSource": {"keys": ["pid", "utm_source"], "defaultValue": PARTNER},
    "campaign": {"keys": ["c", "utm_campaign"]},
    "adSet": {"keys": ["af_adset"]},
    "ad": {"keys": ["af_ad"]},
    "channel": {"keys": ["af_channel"]},
    "afCustom": [
        {"paramKey": key, "keys": [key]}
        for key in ("af_c_id", "af_adset_id", "af_ad_id", "af_siteid", "ttclid")
    ],
}

# JavaScript's \s, spelled out: Python's differs at U+001C..U+001F, U+0085 and U+FEFF.
_JS_SPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# Our click link: https with a path, plain http only on this machine. Group 1 is the origin.
# ASCII-only case folding, as JavaScript's /i does without the u flag.
_ONE_LINK = re.compile(
    rf"(https://[^/?#\\@{_JS_SPACE}]+|http://(?:localhost|127\.0\.0\.1)(?::[0-9]+)?)"
    rf"/[^?#{_JS_SPACE}]+",
    re.IGNORECASE | re.ASCII,
)
# encodeURIComponent leaves these alone; quote() would encode them.
_URI_COMPONENT_SAFE = "!~*'()"


class MappingError(ValueError):
    """A mapping or call argument the rules cannot use; `field` is its JSON path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class _Field:
    """One field configuration: `{keys, overrideValues, defaultValue}`."""

    keys: tuple[str, ...]
    override_values: Mapping[str, str]
    default_value: str

    def value(self, incoming: Mapping[str, str]) -> str:
        # The first key with a non-empty incoming value wins; only incoming values are
        # overridden, never the default. An empty result leaves the parameter out.
        found = next((incoming[key] for key in self.keys if incoming.get(key)), "")
        if found:
            return self.override_values.get(found, found)
        return self.default_value

    def as_json(self) -> dict[str, Any]:
        return {
            "keys": list(self.keys),
            "overrideValues": dict(self.override_values),
            "defaultValue": self.default_value,
        }


@dataclass(frozen=True, slots=True)
class _AfParameters:
    named: tuple[tuple[str, _Field | None], ...]  # (outgoing key, configuration), FIELDS order
    custom: tuple[tuple[str, _Field], ...]  # (paramKey, configuration), array order
    google_click_id_key: str


def _optional_str(obj: object, field: str) -> str:
    if obj is None:
        return ""
    if not isinstance(obj, str):
        raise MappingError(field, "must be a string")
    return obj


def _str_list(obj: object, field: str) -> tuple[str, ...]:
    if obj is None:
        return ()
    if not isinstance(obj, list | tuple) or not all(isinstance(s, str) for s in obj):
        raise MappingError(field, "must be a list of strings")
    return tuple(obj)


def _parse_field(obj: object, field: str) -> _Field:
    if not isinstance(obj, Mapping):
        raise MappingError(field, "must be an object {keys, overrideValues, defaultValue}")
    keys = _str_list(obj.get("keys"), f"{field}.keys")
    default = _optional_str(obj.get("defaultValue"), f"{field}.defaultValue")
    overrides = obj.get("overrideValues")
    if overrides is None:
        overrides = {}
    elif not isinstance(overrides, Mapping) or not all(
        isinstance(v, str) for v in overrides.values()
    ):
        raise MappingError(f"{field}.overrideValues", "must map strings to strings")
    return _Field(keys, dict(overrides), default)


def _parse_af_parameters(obj: object, field: str) -> _AfParameters:
    if not isinstance(obj, Mapping):
        raise MappingError(field, "must be an object")
    named = tuple(
        (key, None if obj.get(name) is None else _parse_field(obj[name], f"{field}.{name}"))
        for name, key in FIELDS
    )
    if named[0][1] is None:
        raise MappingError(f"{field}.mediaSource", "is required")
    custom_list = obj.get("afCustom")
    if custom_list is None:
        custom_list = []
    elif not isinstance(custom_list, list | tuple):
        raise MappingError(f"{field}.afCustom", "must be a list")
    custom = []
    for i, item in enumerate(custom_list):
        path = f"{field}.afCustom[{i}]"
        config = _parse_field(item, path)
        param_key = item.get("paramKey") if isinstance(item, Mapping) else None
        if not isinstance(param_key, str) or not param_key:
            raise MappingError(f"{path}.paramKey", "must be a non-empty string")
        custom.append((param_key, config))
    google = _optional_str(obj.get("googleClickIdKey"), f"{field}.googleClickIdKey")
    return _AfParameters(named, tuple(custom), google)


def validate_af_parameters(obj: object, field: str = "mapping") -> dict[str, Any]:
    """Check an afParameters object and return it normalised (every field configuration with
    keys, overrideValues and defaultValue; unknown fields dropped).

    Raises MappingError naming the first offending field. A custom paramKey that names a key of
    the table (pid, c, af_sub1, ...) is accepted and ignored, as the snippet ignores it.
    """
    parsed = _parse_af_parameters(obj, field)
    out: dict[str, Any] = {
        name: config.as_json()
        for (name, _), (_, config) in zip(FIELDS, parsed.named, strict=True)
        if config is not None
    }
    if parsed.google_click_id_key:
        out["googleClickIdKey"] = parsed.google_click_id_key
    if parsed.custom:
        out["afCustom"] = [{"paramKey": key, **config.as_json()} for key, config in parsed.custom]
    return out


def incoming_params(url: str) -> dict[str, str]:
    """The parameters of a page URL's query, as the snippet reads them: decoded like
    URLSearchParams (`+` is a space, broken escapes stay literal, bad UTF-8 becomes U+FFFD),
    the first non-empty value of each key, in query order."""
    query = url.split("#", 1)[0].partition("?")[2]
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        if value and key not in params:
            params[key] = value
    return params


def _origin(url: str) -> str | None:
    """The origin as a browser's URL parser states it; None when it cannot parse the URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme:
        return None
    if parts.scheme in ("http", "https") and parts.hostname:
        default = 443 if parts.scheme == "https" else 80
        return f"{parts.scheme}://{parts.hostname}:{port or default}"
    return "null"  # an opaque origin: never the page's


def _external_referrer(referrer: str, page_url: str) -> str:
    # The snippet stores a referrer from another origin than the page; a server sees one load.
    origin = _origin(referrer) if referrer else None
    return referrer if origin is not None and origin != _origin(page_url) else ""


def _skipped(skip_list: tuple[str, ...], text: str) -> bool:
    lowered = text.lower()
    return any(s and s.lower() in lowered for s in skip_list)


def ttclid_slot(params: Mapping[str, str], ttclid: str | None, sub: str) -> str | None:
    """The af_subN the ttclid rule writes `ttclid` to: `sub`, else the next free one after it
    (af_sub5 wraps to af_sub1); None when there is no ttclid, one af_subN already holds it, or
    all five are taken. The snippet, the server-built links and the touch collectors (for a
    touch whose URL carried the ttclid but no af_subN, an impression's above all) share it."""
    if not ttclid or any(params.get(k) == ttclid for k in TTCLID_SUBS):
        return None
    start = TTCLID_SUBS.index(sub if sub in TTCLID_SUBS else DEFAULT_TTCLID_SUB)
    free = (TTCLID_SUBS[(start + i) % 5] for i in range(5))
    return next((k for k in free if not params.get(k)), None)


@functools.cache
def _preset() -> _AfParameters:
    """The TikTok preset, parsed once: most pages use it, and every landing page resolves it."""
    return _parse_af_parameters(TIKTOK_PRESET, "afParameters")


def _resolve(
    args: Mapping[str, object],
    page_url: str,
    referrer: str,
    pvid: str | None,
    *,
    direct: bool,
) -> dict[str, str] | None:
    """The outgoing parameters in order, or None. Raises MappingError on bad arguments."""
    raw = args.get("afParameters")
    mapping = _preset() if raw is None else _parse_af_parameters(raw, "afParameters")
    referrer_skip = _str_list(args.get("referrerSkipList"), "referrerSkipList")
    url_skip = _str_list(args.get("urlSkipList"), "urlSkipList")
    web_referrer = _optional_str(args.get("webReferrer"), "webReferrer")
    sub = args.get("ttclidSub")
    sub = DEFAULT_TTCLID_SUB if sub is None else sub
    if not isinstance(sub, str) or sub not in TTCLID_SUBS:
        raise MappingError("ttclidSub", "must be one of af_sub1 .. af_sub5")
    if _skipped(referrer_skip, referrer) or _skipped(url_skip, page_url):
        return None

    incoming = incoming_params(page_url)
    out: dict[str, str] = {}

    def add(key: str, value: str) -> None:
        # A key appears at most once: whoever writes it first keeps it.
        if value and key not in out:
            out[key] = value

    for key, config in mapping.named:
        if config is not None:
            add(key, config.value(incoming))
    if "pid" not in out:
        return None
    google = mapping.google_click_id_key
    if google and google not in _NOT_FOR_GCLID:
        add(google, incoming.get("gclid", ""))
        add("af_keywords", incoming.get("keyword", ""))
    for param_key, config in mapping.custom:
        if param_key not in NAMED_KEYS:
            add(param_key, config.value(incoming))
    if not direct and web_referrer:
        add(web_referrer, _external_referrer(referrer, page_url))
    for click_id in CLICK_IDS:
        wanted = click_id.lower()
        found = next((v for k, v in incoming.items() if k.lower() == wanted), "")
        add(click_id, found)

    # The ttclid rule: the ttclid also goes to an af_subN so that raw data shows it.
    slot = ttclid_slot(out, out.get("ttclid"), sub)
    if slot is not None:
        add(slot, out["ttclid"])

    # The snippet's own keys come first and win; pvid and af_r are written last and win too.
    query = {"af_js_web": "true", "af_ss_ver": SNIPPET_VERSION}
    if direct:
        campaign = out.get("c", "")
        if not campaign:
            return None
        query["af_media_source"] = out["pid"]
        query["af_campaign"] = campaign
        query["af_campaign_id"] = out.get("af_c_id") or campaign
        for key in ("pid", "c", "af_c_id"):
            out.pop(key, None)
    for key, value in out.items():
        query.setdefault(key, value)
    if pvid:
        query.pop("pvid", None)
        query["pvid"] = pvid
    if direct:
        query.pop("af_r", None)
        query["af_r"] = str(args["redirectURL"])
    return query


def _encode(value: str) -> str:
    # encodeURIComponent, exactly once; a lone surrogate raises, as it throws URIError in JS.
    return quote(value, safe=_URI_COMPONENT_SAFE)


def _query_string(params: Mapping[str, str]) -> str:
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in params.items())


def generate_one_link_url(
    args: Mapping[str, object],
    page_url: str,
    *,
    referrer: str = "",
    pvid: str | None = None,
    trusted_link: bool = False,
) -> str | None:
    """The click URL `generateOneLinkURL(args)` gives on `page_url`, or None where it gives
    null. `args` holds the snippet's argument names (oneLinkURL, afParameters, ttclidSub, ...);
    afParameters None means TIKTOK_PRESET.

    `trusted_link`: the link is our own click base, as in the snippet's data-auto mode, so the
    https rule (meant for links typed into a customer's page) does not apply: a plain-http LAN
    or test host is ours too."""
    try:
        link = args.get("oneLinkURL")
        if not isinstance(link, str) or not (trusted_link or _ONE_LINK.fullmatch(link)):
            raise MappingError("oneLinkURL", "must be https://<host>/<path>")
        params = _resolve(args, page_url, referrer, pvid, direct=False)
        return None if params is None else f"{link}?{_query_string(params)}"
    except (MappingError, UnicodeEncodeError):
        return None


def generate_direct_click_url(
    args: Mapping[str, object],
    page_url: str,
    *,
    origin: str,
    referrer: str = "",
    pvid: str | None = None,
) -> str | None:
    """`generateDirectClickURL(args)`: the PC/console/CTV click URL on `origin` (the service's
    public base), or None. `args` holds afParameters, platform, app_id, redirectURL, ..."""
    try:
        platform = args.get("platform")
        if not isinstance(platform, str) or platform.lower() not in DIRECT_PLATFORMS:
            raise MappingError("platform", "unknown platform")
        app_id, redirect = args.get("app_id"), args.get("redirectURL")
        if not isinstance(app_id, str) or not app_id:
            raise MappingError("app_id", "must be a non-empty string")
        if not isinstance(redirect, str) or not redirect:
            raise MappingError("redirectURL", "must be a non-empty string")
        params = _resolve(args, page_url, referrer, pvid, direct=True)
        if params is None:
            return None
        base = f"{origin.rstrip('/')}/v1.0/c2s/click/app/{platform.lower()}/{_encode(app_id)}"
        return f"{base}?{_query_string(params)}"
    except (MappingError, UnicodeEncodeError):
        return None


def cta_url(click_url: str, platform: str) -> str:
    """The href of a CTA button: the click URL with `platform=<platform>` (the server's
    platform override), or the click URL itself when the button names no platform."""
    if not platform:
        return click_url
    separator = "&" if "?" in click_url else "?"
    return f"{click_url}{separator}platform={_encode(platform)}"
