"""The TikTok events an in-app event may be mapped to: the catalogue the config API checks and
`GET /api/v1/partners/tiktokweb_int/events` lists (pure, data only).

Three kinds of `partner_event`, as the config API reports them back (`partner_event_kind`):
- `standard`: one of TikTok's standard web events (`STANDARD_EVENTS`), sent as written;
- `partner_identifier`: an identifier of AppsFlyer's TikTok for Business integration
  (postbacks.md section 2: `Pay`, `Registration`, ...), sent under its TikTok name
  (`Pay` -> `Purchase`); the mapping keeps the identifier the owner chose;
- `custom`: any other name of letters, digits, `_` or `-` (TikTok takes custom web events),
  sent as written. TikTok names are case-sensitive, so `purchase` is a custom event.

Revenue (`include_revenue`) is allowed only where the event is sent as `Purchase`
(postbacks.md section 1), whichever way the owner named it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from app.vocabulary import REVENUE_EVENT

EventKind = Literal["standard", "partner_identifier", "custom"]

# TikTok's standard web events (Events API, `event`), as TikTok spells them.
STANDARD_EVENTS: tuple[str, ...] = (
    "AddPaymentInfo",
    "AddToCart",
    "AddToWishlist",
    "ApplicationApproval",
    "ClickButton",
    "CompletePayment",
    "CompleteRegistration",
    "Contact",
    "CustomizeProduct",
    "Download",
    "FindLocation",
    "InitiateCheckout",
    "Lead",
    "PlaceAnOrder",
    "Purchase",
    "Schedule",
    "Search",
    "StartTrial",
    "SubmitApplication",
    "SubmitForm",
    "Subscribe",
    "ViewContent",
)

# Partner event identifiers of AppsFlyer's TikTok for Business integration (postbacks.md
# section 2) and the TikTok event each is sent as. Postbacks go out as web events of a Pixel,
# so an identifier gets TikTok's standard web event name where one exists; the app-only ones
# keep TikTok's app event name, which the Events API accepts as a custom web event.
PARTNER_IDENTIFIERS: tuple[tuple[str, str], ...] = (
    ("Registration", "CompleteRegistration"),
    ("Pay", "Purchase"),
    ("View_content", "ViewContent"),
    ("Checkout", "InitiateCheckout"),
    ("Add_to_cart", "AddToCart"),
    ("2D_retention", "2Dretention"),
    ("Unlock_achievement", "UnlockAchievement"),
    ("Subscribe", "Subscribe"),
    ("Start_trial", "StartTrial"),
    ("Spend_credits", "SpendCredits"),
    ("Search", "Search"),
    ("Rate", "Rate"),
    ("Login", "Login"),
    ("Loan_disbursal", "LoanDisbursal"),
    ("Loan_approval", "LoanApproval"),
    ("Loan_application", "LoanApplication"),
    ("Achieve_level", "AchieveLevel"),
    ("Join_group", "JoinGroup"),
    ("InApp_ad_impr", "InAppADImpr"),
    ("InApp_ad_click", "InAppADClick"),
    ("Generate_lead", "Lead"),
    ("Create_role", "CreateRole"),
    ("Create_group", "CreateGroup"),
    ("Complete_tutorial", "CompleteTutorial"),
    ("Launch_app", "LaunchAPP"),
    ("Add_to_wishlist", "AddToWishlist"),
    ("Add_payment_info", "AddPaymentInfo"),
)
_BY_IDENTIFIER: Mapping[str, str] = dict(PARTNER_IDENTIFIERS)
_STANDARD = frozenset(STANDARD_EVENTS)

# The in-app events offered by default in the mapping (postbacks.md section 2).
DEFAULT_EVENT_MAP: Mapping[str, str] = {
    "af_complete_registration": "CompleteRegistration",
    "af_purchase": "Purchase",
    "af_content_view": "ViewContent",
    "af_add_to_cart": "AddToCart",
    "af_initiated_checkout": "InitiateCheckout",
    "af_add_payment_info": "AddPaymentInfo",
    "af_add_to_wishlist": "AddToWishlist",
    "af_subscribe": "Subscribe",
    "af_start_trial": "StartTrial",
    "af_search": "Search",
    "af_lead": "Lead",
}

CUSTOM_EVENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,99}")


@dataclass(frozen=True)
class PartnerEvent:
    """What a `partner_event` of a mapping is: its kind and the TikTok event it is sent as."""

    name: str
    kind: EventKind
    tiktok_event: str

    @property
    def revenue_allowed(self) -> bool:
        return self.tiktok_event == REVENUE_EVENT


def resolve(name: str) -> PartnerEvent | None:
    """The partner event `name` names; None when it is none of the three kinds (the config
    API refuses it). A standard name wins over an identifier spelled the same (`Search`)."""
    if name in _STANDARD:
        return PartnerEvent(name, "standard", name)
    if name in _BY_IDENTIFIER:
        return PartnerEvent(name, "partner_identifier", _BY_IDENTIFIER[name])
    if CUSTOM_EVENT_RE.fullmatch(name):
        return PartnerEvent(name, "custom", name)
    return None


def tiktok_event(name: str) -> str:
    """The TikTok event a stored `partner_event` is sent as (custom names as they are)."""
    found = resolve(name)
    return found.tiktok_event if found else name


def listing() -> dict[str, object]:
    """The answer of `GET /api/v1/partners/tiktokweb_int/events`."""
    default_for = {tiktok: app_event for app_event, tiktok in DEFAULT_EVENT_MAP.items()}
    return {
        "standard_events": [
            {
                "name": name,
                "revenue_allowed": name == REVENUE_EVENT,
                "default_app_event": default_for.get(name),
            }
            for name in STANDARD_EVENTS
        ],
        "partner_identifiers": [
            {
                "name": identifier,
                "tiktok_event": tiktok,
                "revenue_allowed": tiktok == REVENUE_EVENT,
            }
            for identifier, tiktok in PARTNER_IDENTIFIERS
        ],
        "custom_events": {
            "allowed": True,
            "pattern": CUSTOM_EVENT_RE.pattern,
            "revenue_allowed": False,
        },
    }
