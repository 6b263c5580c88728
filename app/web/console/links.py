"""The link builder and the link doctor (console.md sections 4 and 5).

Both run the code the real page and click run: the page's mapping through `app.mapping` (the
Python twin of the snippet), the page's CTA links through `app.web.pages`, and each CTA's
redirect through `app.destinations.choose`, exactly as `GET /c/{app_key}` calls it. Nothing here
builds a URL or routes a click by itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from app import destinations, mapping, params
from app.devices import parse_user_agent
from app.store.records import AppRecord, PageRecord
from app.vocabulary import DEFAULT_TTCLID_SUB, DIRECT_PLATFORMS, PARTNER, TTCLID_SUBS
from app.web import pages

# TikTok's URL macros (smartscript.md section 4): what each outgoing key carries.
MACROS: tuple[tuple[str, str], ...] = (
    ("c", "__CAMPAIGN_NAME__"),
    ("af_c_id", "__CAMPAIGN_ID__"),
    ("af_adset", "__AID_NAME__"),
    ("af_adset_id", "__AID__"),
    ("af_ad", "__CID_NAME__"),
    ("af_ad_id", "__CID__"),
)
# Macro names TikTok expands, for spotting misspelt ones.
KNOWN_MACROS = frozenset(
    {m.strip("_") for _, m in MACROS}
    | {"CALLBACK_PARAM", "CAMPAIGN_NAME", "PLACEMENT", "OS", "TS", "IP", "UA", "CSITE"}
)
_MACRO_LIKE = re.compile(r"(?<![A-Za-z0-9])_+[A-Za-z]+(?:_[A-Za-z]+)*_+(?![A-Za-z0-9])")
MAX_URL = 2000
SAMPLE_TTCLID = "E.C.P.doctor-sample"
DOCTOR_PVID = "doctor"
# What the doctor shows as the click id in a Play referrer (a real click gets a fresh one).
CLICK_ID_PLACEHOLDER = "CLICK_ID"
# Phones and a desktop, as the landing page tests see them.
DEVICES: tuple[tuple[str, str, str], ...] = (
    (
        "iphone",
        "iPhone, Safari",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ),
    (
        "android",
        "Android phone, TikTok's in-app browser",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240805.005; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.122 Mobile Safari/537.36 "
        "musical_ly_2023508030 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly "
        "app_version/35.8.3 ByteLocale/en ByteFullLocale/en Region/US BytedanceWebview/d8a21c6",
    ),
    (
        "desktop",
        "Desktop, Chrome",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
    ),
)


def page_mapping(page: PageRecord) -> dict[str, Any]:
    """The afParameters the page uses: its own, else the TikTok preset."""
    found = page.config.get("mapping")
    return mapping.validate_af_parameters(found if found is not None else mapping.TIKTOK_PRESET)


def _incoming_keys(af: dict[str, Any], outgoing: str) -> list[str]:
    """The landing-URL keys the mapping reads for one outgoing key, first one first."""
    for name, key in mapping.FIELDS:
        if key == outgoing and af.get(name):
            return list(af[name]["keys"])
    for custom in af.get("afCustom", []):
        if custom["paramKey"] == outgoing:
            return list(custom["keys"])
    return []


# -- the link builder ----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltLinks:
    destination_url: str
    impression_url: str
    direct: list[tuple[str, str]]  # (platform, direct click URL)
    notes: list[str]


def build_links(page: PageRecord, app: AppRecord, origin: str) -> BuiltLinks:
    af = page_mapping(page)
    notes: list[str] = []
    pid_keys = _incoming_keys(af, "pid")
    query: list[tuple[str, str]] = [(pid_keys[0] if pid_keys else "pid", PARTNER)]
    for outgoing, macro in MACROS:
        keys = _incoming_keys(af, outgoing)
        if keys:
            query.append((keys[0], macro))
        else:
            notes.append(
                f"The page's mapping reads no parameter for {outgoing}: {macro} is left out."
            )
    # Macros stay literal (TikTok replaces them); keys are encoded like any query key.
    text = "&".join(f"{quote(k, safe='')}={v}" for k, v in query)
    destination = f"{origin}/lp/{page.slug}?{text}"
    impression = f"{origin}/i/{app.app_key}?pid={PARTNER}&" + "&".join(
        f"{outgoing}={macro}" for outgoing, macro in MACROS
    )
    direct = []
    for platform, dest in app.config.get("destinations", {}).items():
        if platform not in DIRECT_PLATFORMS or platform in ("ios", "android"):
            continue
        if not dest.get("app_id"):
            notes.append(f"{platform}: give the destination its app id to get a direct link.")
            continue
        url = mapping.generate_direct_click_url(
            {
                "afParameters": af,
                "platform": platform,
                "app_id": dest["app_id"],
                "redirectURL": dest["store_url"],
            },
            destination,
            origin=origin,
        )
        if url:
            direct.append((platform, url))
    return BuiltLinks(destination, impression, direct, notes)


# -- the link doctor -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Warning:
    code: str
    message: str


@dataclass(frozen=True)
class CtaResult:
    platform: str
    href: str
    redirect: str
    routed_to: str
    play_referrer: str | None
    flags: tuple[str, ...]


@dataclass(frozen=True)
class DeviceResult:
    key: str
    label: str
    ctas: list[CtaResult]
    survives: dict[str, str]
    ttclid_sub: str | None


@dataclass
class Diagnosis:
    url: str
    warnings: list[Warning] = field(default_factory=list)
    page: PageRecord | None = None
    devices: list[DeviceResult] = field(default_factory=list)

    def warn(self, code: str, message: str) -> None:
        self.warnings.append(Warning(code, message))

    @property
    def codes(self) -> list[str]:
        return [w.code for w in self.warnings]


def _macro_warnings(d: Diagnosis, url: str) -> None:
    query = url.partition("?")[2]
    for key, value in parse_qsl(query, keep_blank_values=True):
        for found in _MACRO_LIKE.findall(value):
            name = found.strip("_")
            right = f"__{name.upper()}__"
            if name.upper() in KNOWN_MACROS and found != right:
                d.warn(
                    "macro_spelling",
                    f"{key}={found}: TikTok expands only {right} (two underscores each side, "
                    "upper case); this one would reach you as typed.",
                )


def _af_sub_warnings(
    d: Diagnosis, af: dict[str, Any], raw_pairs: list[tuple[str, str]], ttclid_sub: str
) -> None:
    seen: dict[str, str] = {}
    for key, value in raw_pairs:
        if key in TTCLID_SUBS and value:
            if key in seen and seen[key] != value:
                d.warn("af_sub_twice", f"{key} is given twice in the URL: only the first is kept.")
            seen.setdefault(key, value)
    incoming = dict(raw_pairs)
    for sub in TTCLID_SUBS:
        keys = [k for k in _incoming_keys(af, sub) if incoming.get(k)]
        if len(keys) > 1:
            d.warn(
                "af_sub_twice",
                f"{' and '.join(keys)} are both mapped to {sub}: only {keys[0]} is kept.",
            )
        elif sub == ttclid_sub and (keys or sub in seen):
            d.warn(
                "af_sub_twice",
                f"{keys[0] if keys else sub} and the ttclid are both meant for {sub}: the ttclid "
                "moves to the next free af_sub, where reports will not look for it.",
            )


def diagnose(
    url: str, origin: str, page: PageRecord | None, app: AppRecord | None, page_exists: bool
) -> Diagnosis:
    """What Gangway would do with a destination URL (see the module docstring). `page` and `app`
    are those its path names (None when it names none the owner has)."""
    url = url.strip()
    d = Diagnosis(url=url, page=page)
    if len(url) > MAX_URL:
        d.warn("too_long", f"The URL is {len(url):,} characters: TikTok takes {MAX_URL:,} at most.")
    parts = destinations.plain_http_url(url)
    if parts is None:
        d.warn("not_a_url", "This is not an http(s) URL a browser would open as written.")
        return d
    ours = urlsplit(origin)
    if (parts.scheme, parts.netloc.lower()) != (ours.scheme, ours.netloc.lower()):
        d.warn("not_our_host", f"The URL is not on this Gangway ({origin}): no click is counted.")
    _macro_warnings(d, url)
    if not parts.path.startswith("/lp/"):
        d.warn("not_a_page", "The URL is not a landing page of ours (/lp/<slug>).")
        return d
    if page is None or app is None:
        slug = parts.path.removeprefix("/lp/")
        d.warn("no_such_page", f"There is no page {slug!r}: visitors would see a 404.")
        return d

    af = page_mapping(page)
    raw_pairs = parse_qsl(parts.query, keep_blank_values=True)
    incoming = dict(reversed([(k, v) for k, v in raw_pairs if v]))
    pid_keys = _incoming_keys(af, "pid")
    pid = next((incoming[k] for k in pid_keys if incoming.get(k)), None)
    if pid is None:
        d.warn("no_pid", f"No pid: add pid={PARTNER} so the click is TikTok's.")
    elif pid != PARTNER:
        d.warn("wrong_pid", f"pid={pid}: the TikTok integration is {PARTNER}; postbacks need it.")
    ttclid_sub = page.config.get("ttclid_sub") or DEFAULT_TTCLID_SUB
    _af_sub_warnings(d, af, raw_pairs, ttclid_sub)
    hosts = destinations.allowed_hosts(app.config)
    for key in ("af_r", "af_web_dp"):
        value = incoming.get(key)
        if value and destinations.safe_redirect(value, hosts) is None:
            host = urlsplit(value).hostname if destinations.plain_http_url(value) else None
            d.warn(
                "redirect_not_allowed",
                f"{key} goes to {host or 'an unusable URL'}, which the app does not allow: "
                "the click ignores it (add the host to the app's allowed redirect hosts).",
            )

    # TikTok appends the ttclid itself: the doctor adds a sample when the URL has none.
    query = parts.query
    if not any(k.lower() == "ttclid" for k, _ in raw_pairs):
        query += ("&" if query else "") + f"ttclid={SAMPLE_TTCLID}"
    page_url = pages.landing_url(origin, parts.path, query)
    click_url = pages.click_url_for(page, app, origin, page_url, "", DOCTOR_PVID)
    sent_ttclid = params.from_url(page_url).ttclid
    for key, label, user_agent in DEVICES:
        device = parse_user_agent(user_agent)
        ctas = []
        for button in pages.cta_buttons(page, app, click_url, device):
            incoming_click = params.from_url(button["href"])
            dest = destinations.choose(
                app.config,
                os_family=device.os_family,
                forced_platform=incoming_click.params.get("platform") or None,
                params=incoming_click.params,
                click_id=CLICK_ID_PLACEHOLDER,
                fallback_url=page_url,
            )
            referrer = None
            if dest.platform == "android":
                referrer = dict(parse_qsl(urlsplit(dest.url).query)).get("referrer")
            ctas.append(
                CtaResult(
                    button["platform"],
                    button["href"],
                    dest.url,
                    dest.platform,
                    referrer,
                    dest.flags,
                )
            )
        click = params.from_url(click_url)
        survives = {"pid": click.pid or ""} | click.campaign()
        if click.ttclid:
            survives["ttclid"] = click.ttclid
        landed = next(
            (s for s in TTCLID_SUBS if sent_ttclid and click.params.get(s) == sent_ttclid), None
        )
        d.devices.append(DeviceResult(key, label, ctas, survives, landed))
    if sent_ttclid and d.devices and d.devices[0].ttclid_sub is None:
        d.warn(
            "ttclid_no_sub",
            "The ttclid reaches no af_sub (all five are taken): raw data and TikTok's match "
            "keep it, but reports filtered by af_sub will not show it.",
        )
    elif d.devices and d.devices[0].ttclid_sub not in (None, ttclid_sub):
        d.warn(
            "ttclid_moved",
            f"The ttclid lands in {d.devices[0].ttclid_sub}, not the page's {ttclid_sub}.",
        )
    return d
