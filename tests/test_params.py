"""Bounded touch parameters (app/params.py): hostile values are cut and flagged, never refused."""

from __future__ import annotations

from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from app import params


def test_first_non_empty_value_of_a_repeated_key_wins() -> None:
    found = params.from_query("c=&c=summer&c=winter&pid=tiktokweb_int")
    assert found.params == {"c": "summer", "pid": "tiktokweb_int"}
    assert found.flags == ()


def test_ttclid_is_kept_whole_up_to_1024_bytes_then_cut_and_flagged() -> None:
    whole = "E.C.P." + "x" * 1018
    assert params.from_query(f"ttclid={whole}").ttclid == whole
    long = params.from_query("ttclid=" + "y" * 1500 + "&c=ok")
    assert long.ttclid == "y" * 1024
    assert "ttclid_truncated" in long.flags and "truncated" in long.flags
    assert long.params["c"] == "ok"


def test_ttclid_in_another_letter_case_is_still_the_ttclid() -> None:
    assert params.from_query("TTCLID=abc").ttclid == "abc"


def test_other_values_are_cut_at_512_bytes_on_a_character_boundary() -> None:
    # 300 two-byte characters: 600 bytes; the cut must not leave half a character.
    found = params.from_query("c=" + quote("é" * 300))
    assert found.params["c"] == "é" * 256
    assert found.flags == ("truncated",)


def test_at_most_64_params_are_kept() -> None:
    query = "&".join(f"k{i}=v{i}" for i in range(100))
    found = params.from_query(query)
    assert len(found.params) == 64
    assert list(found.params)[-1] == "k63"
    assert "too_many_params" in found.flags


def test_nul_bytes_are_removed_and_flagged() -> None:
    found = params.from_query("c=sum%00mer&a%00b=1")
    assert found.params == {"c": "summer", "ab": "1"}
    assert found.flags == ("nul_removed",)


def test_broken_percent_encoding_never_raises() -> None:
    found = params.from_query("c=%E0%A4%A&d=%ZZ&e=%&f=%FF")
    assert found.params["d"] == "%ZZ"
    assert found.params["e"] == "%"
    assert "\ufffd" in found.params["f"]


def test_an_endless_query_is_read_only_up_to_its_bound() -> None:
    query = "c=1&" + "&".join(f"x{i}={'z' * 100}" for i in range(1000))
    found = params.from_query(query)
    assert "query_truncated" in found.flags and "too_many_params" in found.flags
    assert found.params["c"] == "1"


def test_lone_surrogates_from_json_become_replacement_characters() -> None:
    found = params.from_mapping({"c": "a\ud800b", "af_ad": "ok", "n": 5})
    assert found.params == {"c": "a\ufffdb", "af_ad": "ok"}
    assert found.flags == ("invalid_unicode",)
    # A real pair (an emoji) is not touched.
    assert params.from_mapping({"c": "\U0001f600"}).params == {"c": "\U0001f600"}


def test_a_url_that_cannot_be_parsed_gives_no_params() -> None:
    assert params.from_url("http://[::1/x?c=1") == params.Incoming({}, ("bad_url",))


def test_campaign_fields_and_pid() -> None:
    found = params.from_query("pid=tiktokweb_int&c=s&af_sub1=T&utm_source=x")
    assert found.pid == "tiktokweb_int"
    assert found.campaign() == {"c": "s", "af_sub1": "T"}


def test_clean_pvid() -> None:
    assert params.clean_pvid(" abc ") == "abc"
    assert params.clean_pvid("") is None
    assert params.clean_pvid(5) is None
    assert params.clean_pvid("p" * 500) == "p" * 64


def test_clean_user_agent() -> None:
    assert params.clean_user_agent(None) == (None, set())
    assert params.clean_user_agent("  ") == (None, set())
    assert params.clean_user_agent("\x00") == (None, {"nul_removed"})
    assert params.clean_user_agent("Mozilla/5.0") == ("Mozilla/5.0", set())
    long_ua = "Mozilla/5.0 " + "é" * 600
    cut, flags = params.clean_user_agent(long_ua)
    assert cut is not None and len(cut.encode()) <= params.MAX_USER_AGENT_BYTES
    assert flags == {"truncated"}


def test_to_query_round_trips() -> None:
    values = {"c": "a&b=c d", "x": "<script>"}
    assert params.from_query(params.to_query(values)).params == values


@given(st.text(max_size=3000))
def test_any_query_gives_bounded_storable_params(query: str) -> None:
    found = params.from_query(query)
    assert len(found.params) <= params.MAX_PARAMS
    for key, value in found.params.items():
        assert len(key.encode()) <= params.MAX_KEY_BYTES
        assert len(value.encode()) <= params.MAX_TTCLID_BYTES
        assert "\x00" not in key + value
