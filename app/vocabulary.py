"""The words several modules share: the partner, platforms, destinations, key patterns.

A leaf on purpose: it imports nothing from `app`, so a module that only needs a word does not
depend on the validator or the engine that happened to define it (and no cycle can start here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# The partner Gangway serves: the pid of TikTok's web campaigns and the name of its integration.
PARTNER = "tiktokweb_int"
# The media source reports show for it (reporting.md section 1).
UNIFIED_PARTNER = "tiktokglobal_int"
DEFAULT_UNIFIED_PIDS: Mapping[str, str] = {PARTNER: UNIFIED_PARTNER}

# Platforms of the direct click URL (http-api.md section 1), besides the mobile ones.
DIRECT_PLATFORMS: tuple[str, ...] = tuple(
    (
        "ios android steam epic nativepc playstation xbox switch quest battlenet roku tizen webos "
        "smartcast vidaa"
    ).split()
)
# The phones' platforms; every other install platform is a PC, console or TV store.
MOBILE_PLATFORMS: tuple[str, ...] = ("ios", "android")
# PC stores: one family, since a PC reaches any of them from the same machine and browser.
PC_PLATFORMS: tuple[str, ...] = ("steam", "epic", "nativepc", "battlenet")
# Browser OS families (as app.devices names them) of a PC.
PC_OS_FAMILIES: tuple[str, ...] = ("windows", "macos", "linux", "chromeos")


def platform_family(platform: str | None) -> str | None:
    """The family of a store platform: `pc` for the PC stores, `android` for the APK, else the
    platform itself (each console and TV is its own)."""
    if not platform:
        return None
    name = platform.strip().lower()
    if name in PC_PLATFORMS:
        return "pc"
    return "android" if name == "apk" else name


# Destinations an app may configure: the direct-click platforms, the Android APK and the web.
DESTINATIONS: tuple[str, ...] = (*DIRECT_PLATFORMS, "apk", "web")
# Destinations that are a plain download/URL rather than a store listing with an app id.
URL_DESTINATIONS: tuple[str, ...] = ("apk", "web")

# The af_sub parameters a forwarded ttclid may be written to, and the one used by default.
TTCLID_SUBS: tuple[str, ...] = tuple(f"af_sub{n}" for n in range(1, 6))
DEFAULT_TTCLID_SUB = "af_sub1"

# The TikTok event an attributed install sends unless the integration names another, and the
# only TikTok event that may carry revenue (the config API refuses include_revenue elsewhere).
DEFAULT_INSTALL_EVENT = "Download"
REVENUE_EVENT = "Purchase"

# The referrer parameter naming our click in a Play install referrer (http-api.md, `/c/`).
REFERRER_CLICK_PARAM = "gw_click_id"

APP_KEY_RE = re.compile(r"^[a-z0-9-]{1,40}$")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
