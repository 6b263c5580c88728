"""Properties of the attribution engine over random touch sets (Hypothesis).

The touches are drawn from small pools of IPs, OS versions, models, verdicts and claims so that
matches, mismatches, ties and window edges all come up often.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from app.attribution import (
    AttributionSettings,
    Candidates,
    Decision,
    InstallFacts,
    decide,
    parse_install_referrer,
)
from app.touches import Touch

INSTALL_TIME = 1_795_255_200.0
HOUR = 3_600
DAY = 86_400
INSTANCE = "instance-self"
IP = "203.0.113.7"

# Pure functions over small inputs: no deadline (a slow CI machine is not a failure) and no
# example database (the run is the same wherever it happens).
fast = settings(max_examples=100, deadline=None, database=None)


@st.composite
def touches(
    draw: st.DrawFn, kind: str, prefix: str, install: InstallFacts, config: AttributionSettings
) -> list[Touch]:
    windows = (
        config.click_lookback_days * DAY,
        config.probabilistic_window_hours * HOUR,
        config.viewthrough_lookback_hours * HOUR,
    )
    # Seconds before the install: mostly inside every window, often at a window's edge or one
    # second either side of it (the install's own second is the upper edge), sometimes at the
    # click-injection edge or anywhere from an hour after the install to ten days before it.
    edges = st.sampled_from([edge + step for edge in (*windows, 0) for step in (0, -1, 1)])
    before_install = st.one_of(
        st.integers(min_value=0, max_value=min(windows)),
        edges,
        st.sampled_from([9, 10, 11]),
        st.integers(min_value=-HOUR, max_value=10 * DAY),
    )
    count = draw(st.integers(min_value=0, max_value=6))
    return [
        Touch(
            id=f"{prefix}{index}",
            kind="click" if kind == "click" else "impression",
            app_key="demo",
            time=INSTALL_TIME - draw(before_install),
            # Each pool leans towards values that agree with the install, so that most touches
            # are candidates and the rules under test decide between them.
            ip=draw(st.sampled_from([IP] * 6 + ["198.51.100.9", None])),
            os_family=draw(st.sampled_from([install.platform] * 6 + ["android", "ios", None])),
            os_version=draw(st.sampled_from([None, "14"] * 3 + ["14.1", "13", "10"])),
            device_model=draw(
                st.sampled_from([None, "Pixel 8"] * 3 + ["pixel 8", "K", "SM-S918B"])
            ),
            pid=draw(st.sampled_from(["tiktokweb_int"] * 3 + ["othernet_int", None])),
            verdict=draw(st.sampled_from(["human"] * 3 + ["suspect", "bot"])),
            claimed_by=(
                draw(st.sampled_from([None] * 6 + [INSTANCE, "instance-other"]))
                if kind == "click"
                else None
            ),
        )
        for index in range(count)
    ]


installs = st.builds(
    InstallFacts,
    app_instance_id=st.just(INSTANCE),
    platform=st.sampled_from(["android"] * 3 + ["ios"]),
    time=st.just(INSTALL_TIME),
    ip=st.sampled_from([IP] * 5 + [None]),
    os_version=st.sampled_from(["14", "14", "13", None]),
    device_model=st.sampled_from(["Pixel 8", "Pixel 8", None]),
    att_status=st.sampled_from([None, "authorized", "authorized", "denied", "restricted"]),
    install_referrer=st.none(),
)

attribution_settings = st.builds(
    AttributionSettings,
    click_lookback_days=st.integers(min_value=1, max_value=30),
    probabilistic_window_hours=st.integers(min_value=1, max_value=24),
    viewthrough_lookback_hours=st.integers(min_value=1, max_value=24),
    min_click_to_install_seconds=st.sampled_from([0, 10, 600]),
    probabilistic_ios=st.sampled_from([True, True, False]),
    view_through_pids=st.sampled_from([frozenset({"tiktokweb_int"})] * 2 + [frozenset()]),
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[InstallFacts, Candidates, AttributionSettings]:
    install = draw(installs)
    config = draw(attribution_settings)
    clicks = draw(touches("click", "c", install, config))
    impressions = draw(touches("impression", "i", install, config))
    # The Play referrer names nothing (most installs), an unknown click, or one of the clicks.
    referrer_click = draw(st.sampled_from([None] * 3 + clicks)) if clicks else None
    unknown = draw(st.sampled_from([None] * 4 + ["unknown"]))
    referrer = referrer_click.id if referrer_click else unknown
    candidates = Candidates(referrer_click, referrer, clicks, impressions)
    return install, candidates, config


def window_of(decision: Decision, config: AttributionSettings) -> float:
    return {
        "referrer": config.click_lookback_days * DAY,
        "probabilistic_click": config.probabilistic_window_hours * HOUR,
        "probabilistic_impression": config.viewthrough_lookback_hours * HOUR,
    }[str(decision.match_type)]


# Three properties on one stream of examples: a wrong pick of any kind is rare in random data,
# so each property gets every example the time budget allows.
@settings(fast, max_examples=400)
@given(scenarios())
def test_the_chosen_touch_is_in_its_window_human_and_unclaimed(scenario: Any) -> None:
    install, candidates, config = scenario
    decision = decide(install, candidates, config)
    touch = decision.touch
    if touch is None:
        return
    window = window_of(decision, config)
    assert install.time - window <= touch.time <= install.time, "outside its window"
    assert touch.verdict != "bot", "a bot touch"
    if touch.claimed_by is not None:
        # Only the referrer tier may take back a click this very install claimed.
        assert touch.claimed_by == INSTANCE, "a click claimed by another install"
        assert decision.match_type == "referrer", "a claimed click outside the referrer tier"


@fast
@given(scenarios(), st.randoms(use_true_random=False))
def test_the_decision_ignores_the_order_of_the_touches(scenario: Any, rng: Any) -> None:
    install, candidates, config = scenario
    clicks, impressions = list(candidates.clicks), list(candidates.impressions)
    rng.shuffle(clicks)
    rng.shuffle(impressions)
    shuffled = Candidates(
        candidates.referrer_click, candidates.referrer_click_id, clicks, impressions
    )
    assert decide(install, shuffled, config) == decide(install, candidates, config)


@fast
@given(scenarios(), st.integers(min_value=0, max_value=HOUR - 1))
def test_no_impression_is_chosen_while_a_valid_click_exists(scenario: Any, age: int) -> None:
    install, candidates, config = scenario
    # An Android install with an IP, a click from it that every probabilistic rule accepts
    # (inside the shortest window, human, unclaimed, its version and model unknown), and a
    # referrer that names no unknown click (that alone would make the install organic).
    install = InstallFacts(
        INSTANCE,
        "android",
        INSTALL_TIME,
        IP,
        install.os_version,
        install.device_model,
        None,
        None,
    )
    valid = Touch(
        id="valid",
        kind="click",
        app_key="demo",
        time=INSTALL_TIME - age,
        ip=IP,
        os_family="android",
        pid="tiktokweb_int",
    )
    known = candidates.referrer_click_id if candidates.referrer_click else None
    candidates = Candidates(
        candidates.referrer_click, known, [*candidates.clicks, valid], candidates.impressions
    )
    decision = decide(install, candidates, config)
    assert decision.touch is not None
    assert decision.touch.kind == "click"
    assert decision.match_type in ("referrer", "probabilistic_click")


params = st.dictionaries(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12),
    st.text(max_size=20),
    max_size=5,
)


@fast
@given(params, st.integers(min_value=0, max_value=2))
def test_a_referrer_reads_the_same_raw_or_encoded(sent: dict[str, str], rounds: int) -> None:
    raw = urlencode(sent)
    for _ in range(rounds):
        raw = quote(raw, safe="")
    assert parse_install_referrer(raw) == sent


@fast
@given(st.text())
def test_any_referrer_text_parses_without_error(raw: str) -> None:
    assert isinstance(parse_install_referrer(raw), dict)
