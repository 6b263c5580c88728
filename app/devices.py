"""Who sent a touch: the device behind a user agent, the bot verdict, and the client IP.

Three pure decisions the tracking handlers make for every impression and click:

- `parse_user_agent`: the device fields a touch stores (OS family and version, device model,
  browser) plus the in-app browser it came from. The rules are uap-core's, shipped by
  `ua-parser-builtins`; hand-written UA parsing goes stale within months.
- `bot_verdict`: `human`, `suspect` or `bot` with the reason codes of attribution.md section 1.
  Verdicts are kept on the touch, never used to drop it.
- `client_ip`: the visitor's address, believing `X-Forwarded-For` only as far as the proxies the
  owner listed as trusted (`parse_networks` reads that list from the settings).

Decisions the spec leaves open:

- iPadOS Safari asks for desktop sites by default and then sends a Mac user agent that no server
  can tell from a real Mac's. Such a touch is `macos`, desktop; the landing page can still route
  the visitor with `?platform=ios`.
- Frozen values are reported as unknown rather than as facts: Chrome's reduced Android user
  agent always says "Android 10; K" and every Mac browser says "Mac OS X 10_15_7". Reporting
  those would make the probabilistic matcher see a version or model mismatch where there is none.
- Apple devices are named by family ("iPhone", "iPad"): Safari never reveals more, and in-app
  browsers that add a hardware id ("iPhone14,5") would otherwise name one phone two ways.
- A link-preview fetcher is reported as `preview_ua`, not also `crawler_ua`, so reports can tell
  "the link was pasted into a chat" apart from "a crawler visited".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network

from crawlerdetect import CrawlerDetect
from ua_parser import BasicResolver, Domain, load_builtins

from app.addresses import IPAddress, parse_ip
from app.touches import Verdict

# The same few user agents arrive over and over during a campaign; parsing one costs most of a
# millisecond of regex matching, so the parsed answer is kept.
PARSE_CACHE_SIZE = 4096
# No browser sends a user agent this long; the cap keeps a hostile header from costing more
# regex time than a real one. Tokens past it are ignored.
MAX_PARSED_UA_CHARS = 2048


@cache
def _resolver() -> BasicResolver:
    # Built on first use, not at import: compiling the rules takes a while, and importing a
    # module must not do work (the server warms it up in its lifespan instead).
    return BasicResolver(load_builtins())


@cache
def _crawlers() -> CrawlerDetect:
    return CrawlerDetect()


def warm_up() -> None:
    """Compile the parser and crawler rules now, so the first visitor does not wait for them."""
    _resolver()
    _crawlers()


# uap-core OS families, lower-cased the way touches and installs name platforms. Anything else is
# lower-cased with spaces removed ("Windows Phone" -> "windowsphone").
_OS_FAMILIES: dict[str, str] = {
    "iOS": "ios",
    "Android": "android",
    "Windows": "windows",
    "Mac OS X": "macos",
    "Chrome OS": "chromeos",
    "Linux": "linux",
    "Ubuntu": "linux",
    "Kubuntu": "linux",
    "Debian": "linux",
    "Fedora": "linux",
    "Red Hat": "linux",
    "CentOS": "linux",
    "Arch Linux": "linux",
    "Gentoo": "linux",
    "Mint": "linux",
    "openSUSE": "linux",
    "SUSE": "linux",
    "Slackware": "linux",
}
_MOBILE_OS_FAMILIES = frozenset({"ios", "android", "windowsphone", "harmonyos", "kaios"})

# uap-core browser families that are an app's built-in browser, by the in-app name we store.
_IN_APP_BROWSERS: dict[str, str] = {
    "TikTok": "tiktok",
    "Instagram": "instagram",
    "Facebook": "facebook",
    "Facebook Messenger": "messenger",
    "Snapchat": "snapchat",
    "Twitter": "twitter",
    "Pinterest": "pinterest",
    "LINE": "line",
    "WeChat Browser": "wechat",
    "KakaoTalk": "kakaotalk",
    "Telegram": "telegram",
}
# TikTok's webview is the one this service exists for, so it is recognised by its own tokens
# too: uap-core misses Android builds that carry only "musical_ly_<build number>" or "trill_".
# "TikTok" counts only followed by a version: "TikTokSpider" and the "@tiktok.com" in bot user
# agents are not its browser.
_TIKTOK_TOKENS = re.compile(
    r"musical_ly|BytedanceWebview/|\btrill_\d|\bTikTok[ /]\d", re.IGNORECASE
)

# Placeholder models: reduced Chrome UAs say "K"; uap-core's generic and spider devices say
# "Smartphone", "Desktop" and the like. None of them names a device.
_PLACEHOLDER_BRANDS = frozenset({"Generic", "Spider"})
_REDUCED_ANDROID_MODEL = "K"
_FROZEN_MACOS_VERSION = ("10", "15", "7")

# Link-preview fetchers: a chat or social app fetching the page to draw a card when the link is
# shared. crawlerdetect knows most of them as crawlers; this list names them as previews and
# adds the ones it misses (Bluesky's Cardyb).
_PREVIEW_FETCHERS = re.compile(
    r"facebookexternalhit|Facebot|Twitterbot|Slackbot|Slack-ImgProxy|WhatsApp/|TelegramBot"
    r"|Discordbot|LinkedInBot|SkypeUriPreview|redditbot|Embedly|vkShare|Iframely|Pinterestbot"
    r"|pinterest\.com/bot|Snap URL Preview|kakaotalk-scrap|Mastodon/|Cardyb",
    re.IGNORECASE,
)

IPNetwork = IPv4Network | IPv6Network


@dataclass(frozen=True)
class Device:
    """What a user agent says about the visitor's device; None where it says nothing usable."""

    os_family: str | None
    os_version: str | None
    device_model: str | None
    browser: str | None
    in_app: str | None
    is_mobile: bool


UNKNOWN_DEVICE = Device(None, None, None, None, None, False)


@dataclass(frozen=True)
class BotVerdict:
    label: Verdict
    reasons: tuple[str, ...]


def parse_user_agent(ua: str | None) -> Device:
    """The device a User-Agent header describes; `UNKNOWN_DEVICE` when there is none."""
    if ua is None or not ua.strip():
        return UNKNOWN_DEVICE
    return _parse(ua[:MAX_PARSED_UA_CHARS])


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parse(ua: str) -> Device:
    result = _resolver()(ua, Domain.ALL).complete()
    os_family = _os_family(result.os.family if result.os else None)
    os_version = None
    if result.os and result.os.major:
        parts = (result.os.major, result.os.minor, result.os.patch)
        if not (os_family == "macos" and parts == _FROZEN_MACOS_VERSION):
            os_version = ".".join(p for p in parts if p)

    device_model = None
    if result.device and result.device.brand not in _PLACEHOLDER_BRANDS:
        if result.device.brand == "Apple":
            device_model = result.device.family
        else:
            device_model = result.device.model
    if os_family == "android" and device_model == _REDUCED_ANDROID_MODEL:
        device_model = None
        os_version = None

    browser = result.user_agent.family if result.user_agent else None
    in_app = _IN_APP_BROWSERS.get(browser) if browser else None
    if in_app is None and _TIKTOK_TOKENS.search(ua):
        in_app = "tiktok"
    if in_app == "tiktok":
        browser = "TikTok"

    return Device(
        os_family=os_family,
        os_version=os_version,
        device_model=device_model or None,
        browser=browser,
        in_app=in_app,
        is_mobile=os_family in _MOBILE_OS_FAMILIES,
    )


def _os_family(family: str | None) -> str | None:
    if family is None or family == "Other":
        return None
    return _OS_FAMILIES.get(family) or family.lower().replace(" ", "")


def bot_verdict(ua: str | None, *, method: str = "GET", burst: bool = False) -> BotVerdict:
    """The verdict for one touch request.

    `burst` is the caller's per-IP count (`BurstCounter`) saying this IP sent too many touches
    in the last minute; alone it only makes the touch `suspect`, since one carrier NAT can put
    many real phones behind one address.
    """
    reasons: list[str] = []
    if method.upper() == "HEAD":
        reasons.append("head_request")
    if ua is None or not ua.strip():
        reasons.append("no_ua")
    else:
        ua_reason = _ua_reason(ua[:MAX_PARSED_UA_CHARS])
        if ua_reason:
            reasons.append(ua_reason)
    is_bot = bool(reasons)
    if burst:
        reasons.append("burst_ip")
    label: Verdict = "bot" if is_bot else "suspect" if burst else "human"
    return BotVerdict(label, tuple(reasons))


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _ua_reason(ua: str) -> str | None:
    if _PREVIEW_FETCHERS.search(ua):
        return "preview_ua"
    if _crawlers().is_crawler(ua):
        return "crawler_ua"
    return None


def client_ip(
    peer: str | None,
    forwarded_for: str | None,
    trusted_proxies: Sequence[IPNetwork],
) -> str | None:
    """The visitor's IP address, normalised (IPv4-mapped IPv6 becomes IPv4).

    `peer` is the socket's remote address. `forwarded_for` is every X-Forwarded-For value of the
    request joined with commas, in order. Only a trusted peer's X-Forwarded-For is read, from the
    right: each trusted proxy appended the address it saw, so the first untrusted address is the
    client; anything left of it is whatever the client chose to send. When the chain holds
    something that is not an address, nothing in it can be believed and the peer is the answer.
    An unusable peer (missing, or not an IP such as a test client's name) gives None.
    """
    peer_address = _parse_address(peer)
    if peer_address is None:
        return None
    if not forwarded_for or not _is_trusted(peer_address, trusted_proxies):
        return str(peer_address)
    client = peer_address
    for entry in reversed(forwarded_for.split(",")):
        address = _parse_address(entry)
        if address is None:
            return str(peer_address)
        client = address
        if not _is_trusted(address, trusted_proxies):
            break
    # Every hop trusted: the left-most is the nearest thing to a client there is.
    return str(client)


def _is_trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    # `in` across IP versions is simply False, so mixed lists need no special case.
    return any(address in network for network in networks)


def _parse_address(text: str | None) -> IPAddress | None:
    """An address as proxies write it: bare, "[v6]", "[v6]:port" or "v4:port"; None if not one."""
    if text is None:
        return None
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return parse_ip(text)
    except ValueError:
        return None


def parse_networks(spec: str) -> tuple[IPNetwork, ...]:
    """Networks from a comma-separated setting such as "10.0.0.0/8, 127.0.0.1, ::1".

    A bare address is a one-address network; host bits after the prefix are ignored
    ("10.1.2.3/8" is 10.0.0.0/8). Raises ValueError naming the entry that is neither.
    """
    networks: list[IPNetwork] = []
    for entry in spec.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {entry!r}") from None
    return tuple(networks)
