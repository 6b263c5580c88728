"""The Python twin of the snippet (`app/mapping.py`) against every vector it can run, and the
parts only the server uses: validation of a page's mapping, the CTA rule, hostile queries."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import mapping
from tests.mapping_vectors import (
    EXTRA_VECTORS,
    PVID,
    SHARED_VECTORS,
    SNIPPET_ORIGIN,
    Case,
    all_cases,
    assert_matches,
    load_cases,
)

SERVER_CASES = [c for c in all_cases() if c.only != "js"]


def generate(case: Case) -> str | None:
    if case.call == "generateOneLinkURL":
        return mapping.generate_one_link_url(
            case.args, case.page_url, referrer=case.referrer(), pvid=PVID
        )
    assert case.call == "generateDirectClickURL"
    return mapping.generate_direct_click_url(
        case.args, case.page_url, origin=SNIPPET_ORIGIN, referrer=case.referrer(), pvid=PVID
    )


def test_every_vector_file_has_cases() -> None:
    # Guards against a lost or truncated vector file silently shrinking the parametrised list below.
    assert len(load_cases(SHARED_VECTORS)) >= 28
    assert len(load_cases(EXTRA_VECTORS)) >= 40


@pytest.mark.parametrize("case", SERVER_CASES, ids=[c.name for c in SERVER_CASES])
def test_vector(case: Case) -> None:
    assert_matches(case, generate(case))


def test_preset_is_the_spec_table() -> None:
    url = mapping.generate_one_link_url(
        {"oneLinkURL": "https://t.example/c/demo", "afParameters": None},
        "https://t.example/lp/x?utm_source=tt&utm_campaign=cmp&af_siteid=s1&af_channel=ch",
    )
    assert url is not None
    assert dict(parse_qsl(urlsplit(url).query)) == {
        "af_js_web": "true",
        "af_ss_ver": mapping.SNIPPET_VERSION,
        "pid": "tt",
        "c": "cmp",
        "af_channel": "ch",
        "af_siteid": "s1",
    }


def test_validate_returns_a_normalised_mapping_that_validates_again() -> None:
    clean = mapping.validate_af_parameters(mapping.TIKTOK_PRESET)
    assert clean["mediaSource"] == {
        "keys": ["pid", "utm_source"],
        "overrideValues": {},
        "defaultValue": "tiktokweb_int",
    }
    assert [c["paramKey"] for c in clean["afCustom"]][-1] == "ttclid"
    assert mapping.validate_af_parameters(clean) == clean


def test_validate_drops_unknown_fields() -> None:
    clean = mapping.validate_af_parameters({"mediaSource": {"keys": []}, "colour": "red"})
    assert set(clean) == {"mediaSource"}


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (None, "mapping"),
        ([], "mapping"),
        ({}, "mapping.mediaSource"),
        ({"mediaSource": "pid"}, "mapping.mediaSource"),
        ({"mediaSource": {"keys": "pid"}}, "mapping.mediaSource.keys"),
        ({"mediaSource": {"keys": ["pid", 3]}}, "mapping.mediaSource.keys"),
        ({"mediaSource": {"defaultValue": 1}}, "mapping.mediaSource.defaultValue"),
        ({"mediaSource": {"overrideValues": {"a": None}}}, "mapping.mediaSource.overrideValues"),
        ({"mediaSource": {}, "afSub2": []}, "mapping.afSub2"),
        ({"mediaSource": {}, "afCustom": {}}, "mapping.afCustom"),
        ({"mediaSource": {}, "afCustom": [{"keys": []}]}, "mapping.afCustom[0].paramKey"),
        ({"mediaSource": {}, "afCustom": [{"paramKey": "x"}, 5]}, "mapping.afCustom[1]"),
        ({"mediaSource": {}, "googleClickIdKey": 1}, "mapping.googleClickIdKey"),
    ],
)
def test_validate_names_the_bad_field(obj: object, field: str) -> None:
    with pytest.raises(mapping.MappingError) as raised:
        mapping.validate_af_parameters(obj)
    assert raised.value.field == field
    assert isinstance(raised.value, ValueError)  # the owner API answers it as a 400


def test_page_ttclid_sub_reaches_the_rule() -> None:
    url = mapping.generate_one_link_url(
        {"oneLinkURL": "https://t.example/c/demo", "ttclidSub": "af_sub5"},
        "https://t.example/lp/x?ttclid=T9",
    )
    assert url is not None and url.endswith("&ttclid=T9&af_sub5=T9")


def test_pvid_is_last_and_wins_over_a_mapped_pvid() -> None:
    args: dict[str, Any] = {
        "oneLinkURL": "https://t.example/c/demo",
        "afParameters": {
            "mediaSource": {"keys": [], "defaultValue": "m"},
            "afCustom": [{"paramKey": "pvid", "keys": [], "defaultValue": "forged"}],
        },
    }
    url = mapping.generate_one_link_url(args, "https://t.example/lp/x", pvid="real")
    assert url is not None and url.endswith("&pid=m&pvid=real")


@pytest.mark.parametrize(
    ("referrer", "kept"),
    [
        ("https://www.google.com/", True),
        ("https://t.example:8443/", True),  # another port is another origin
        ("http://t.example/", True),  # and so is another scheme
        ("https://T.EXAMPLE:443/other?q=1", False),  # same origin, spelled differently
        ("android-app://com.google.android.gm/", True),
        ("not a url", False),
        ("https://[::1/", False),
    ],
)
def test_web_referrer_only_from_another_origin(referrer: str, kept: bool) -> None:
    args = {"oneLinkURL": "https://t.example/c/demo", "webReferrer": "ref"}
    url = mapping.generate_one_link_url(args, "https://t.example/lp/x", referrer=referrer)
    assert url is not None
    assert (dict(parse_qsl(urlsplit(url).query)).get("ref") == referrer) is kept


@pytest.mark.parametrize(
    ("click_url", "platform", "href"),
    [
        (
            "https://t.example/c/demo?af_js_web=true",
            "ios",
            "https://t.example/c/demo?af_js_web=true&platform=ios",
        ),
        ("https://t.example/c/demo?pid=x", "", "https://t.example/c/demo?pid=x"),
        ("https://t.example/c/demo", "steam", "https://t.example/c/demo?platform=steam"),
        (
            "https://t.example/c/demo?pid=x",
            "a b&c",
            "https://t.example/c/demo?pid=x&platform=a%20b%26c",
        ),
    ],
)
def test_cta_url(click_url: str, platform: str, href: str) -> None:
    assert mapping.cta_url(click_url, platform) == href


@pytest.mark.parametrize(
    "args",
    [
        {"oneLinkURL": "https://t.example/c/demo", "afParameters": "preset"},
        {"oneLinkURL": "https://t.example/c/demo", "referrerSkipList": "google"},
        {"oneLinkURL": "https://t.example/c/demo", "webReferrer": ["ref"]},
        {"oneLinkURL": "https://t.example/c/demo", "ttclidSub": 1},
        {"oneLinkURL": "ftp://t.example/c/demo"},
        {"oneLinkURL": "https://user@t.example/c/demo"},
        {"oneLinkURL": "https://t.example/c/demo#top"},
        {"oneLinkURL": "https://t.example/"},
        {"oneLinkURL": ["https://t.example/c/demo"]},
        {},
    ],
)
def test_bad_arguments_give_none(args: dict[str, Any]) -> None:
    assert mapping.generate_one_link_url(args, "https://t.example/lp/x?pid=p") is None


def test_incoming_params_first_non_empty_value_in_query_order() -> None:
    params = mapping.incoming_params("https://t.example/lp?b=&a=1&b=2&a=3#b=4")
    assert list(params.items()) == [("a", "1"), ("b", "2")]


# Query and referrer pieces a hostile or broken link may carry: broken escapes, bad UTF-8,
# NUL bytes, separators, and the keys the preset reads.
hostile_text = st.lists(
    st.sampled_from(
        ["a", "Z", "0", "%", "+", "=", "&", "?", "#", ";", "/", " ", "\x00", "\u00e9", "\ufffd"]
        + ["%C3", "%2", "%F0%9F", "%00", "pid", "c", "utm_campaign", "ttclid", "TTCLID"]
    ),
    max_size=40,
).map("".join)


@given(query=hostile_text, referrer=hostile_text)
def test_hostile_queries_never_raise(query: str, referrer: str) -> None:
    page = "https://t.example/lp/x?" + query
    url = mapping.generate_one_link_url(
        {"oneLinkURL": "https://t.example/c/demo", "webReferrer": "ref"},
        page,
        referrer=referrer,
        pvid=PVID,
    )
    assert url is not None  # the preset always resolves: pid has a default
    keys = [k for k, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)]
    assert len(keys) == len(set(keys))

    direct = mapping.generate_direct_click_url(
        {"platform": "steam", "app_id": "440", "redirectURL": "https://s.example/"},
        page,
        origin=SNIPPET_ORIGIN,
        referrer=referrer,
    )
    incoming = mapping.incoming_params(page)
    has_campaign = bool(incoming.get("c") or incoming.get("utm_campaign"))
    assert (direct is not None) == has_campaign
    assert direct is None or direct.endswith("&af_r=https%3A%2F%2Fs.example%2F")


def test_ten_kilobyte_ttclid_passes_whole() -> None:
    ttclid = "E.C.P." + "x" * 10_000
    url = mapping.generate_one_link_url(
        {"oneLinkURL": "https://t.example/c/demo"}, f"https://t.example/lp?ttclid={ttclid}"
    )
    assert url is not None
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["ttclid"] == params["af_sub1"] == ttclid
