"""Device parsing, bot verdicts and the client IP, over user agents real browsers and bots send."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from app.devices import (
    UNKNOWN_DEVICE,
    BotVerdict,
    Device,
    bot_verdict,
    client_ip,
    parse_networks,
    parse_user_agent,
)

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
IPHONE_TIKTOK = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 BytedanceWebview/d8a21c6 musical_ly_32.8.0 JsSdk/2.0 "
    "NetType/WIFI Channel/App ByteLocale/ar Region/SA"
)
IPHONE_TIKTOK_OLDER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 15_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 musical_ly_25.1.1 JsSdk/2.0 NetType/WIFI "
    "Channel/App Store ByteLocale/en Region/US ByteFullLocale/en isDarkMode/0 WKWebView/1 "
    "BytedanceWebview/d8a21c6"
)
IPAD_TIKTOK = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1 musical_ly_34.0.0 JsSdk/2.0 NetType/WIFI "
    "Channel/App Store ByteLocale/en Region/IE isDarkMode/0 WKWebView/1 RevealType/Dialog"
)
ANDROID_TIKTOK = (
    "Mozilla/5.0 (Linux; Android 10; STK-LX1 Build/HONORSTK-LX1; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/110.0.5481.153 Mobile Safari/537.36 "
    "musical_ly_2022803040 JsSdk/1.0 NetType/WIFI Channel/huaweiadsglobal_int "
    "AppName/musical_ly app_version/28.3.4 ByteLocale/en ByteFullLocale/en Region/IQ "
    "Spark/1.2.7-alpha.8 AppVersion/28.3.4 PIA/1.5.11 BytedanceWebview/d8a21c6"
)
ANDROID_TIKTOK_TRILL = (
    "Mozilla/5.0 (Linux; Android 13; SM-A546E Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/120.0.0.0 Mobile Safari/537.36 trill_2023008030 "
    "JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/30.8.3 "
    "ByteLocale/es-CO BytedanceWebview/d8a21c6"
)
# TikTok as it ships in Japan and elsewhere: only "trill" tokens, which uap-core does not know.
ANDROID_TIKTOK_TRILL_ONLY = (
    "Mozilla/5.0 (Linux; Android 14; SM-A145F; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/140.0.0.0 Mobile Safari/537.36 trill_390004 JsSdk/1.0 NetType/WIFI "
    "Channel/googleplay AppName/trill app_version/39.0.4 ByteLocale/en"
)
ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
# Chrome's reduced user agent: the "10" and "K" are frozen, whatever the phone.
ANDROID_CHROME_REDUCED = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
SAMSUNG_INTERNET = (
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
)
IPAD_SAFARI = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1"
)
INSTAGRAM_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Instagram 300.0.0.29.110 (iPhone14,5; iOS 17_0; es_CO; "
    "es-CO; scale=3.00; 1170x2532; 463736449)"
)
FACEBOOK_ANDROID = (
    "Mozilla/5.0 (Linux; Android 12; SM-G991B Build/SP1A.210812.016; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/98.0.4758.87 Mobile Safari/537.36 "
    "[FB_IAB/FB4A;FBAV/353.0.0.34.116;]"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
# Also what iPadOS Safari sends in its default "desktop website" mode.
MACOS_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15"
)
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
UBUNTU_FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
CHROMEBOOK = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GOOGLEBOT = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 "
    "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
)
TIKTOK_SPIDER = (
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Mobile Safari/537.36 (compatible; TikTokSpider; ttspider-feedback@tiktok.com)"
)
APPLEBOT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"
)
FACEBOOKEXTERNALHIT = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
# What iMessage sends when it draws a link preview.
IMESSAGE_PREVIEW = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) "
    "Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"
)
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
WHATSAPP = "WhatsApp/2.23.20.0 A"
TELEGRAMBOT = "TelegramBot (like TwitterBot)"
TWITTERBOT = "Twitterbot/1.0"
DISCORDBOT = "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"
LINKEDINBOT = (
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"
)
SKYPE_PREVIEW = (
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
    "skype-url-preview@microsoft.com"
)
# crawlerdetect's list does not know Bluesky's card fetcher; ours does.
BLUESKY_CARDYB = "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)"
CURL = "curl/8.5.0"


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (IPHONE_SAFARI, Device("ios", "17.4", "iPhone", "Mobile Safari", None, True)),
        (IPHONE_TIKTOK, Device("ios", "17.2.1", "iPhone", "TikTok", "tiktok", True)),
        (IPHONE_TIKTOK_OLDER, Device("ios", "15.5", "iPhone", "TikTok", "tiktok", True)),
        (IPAD_TIKTOK, Device("ios", "16.6", "iPad", "TikTok", "tiktok", True)),
        (ANDROID_TIKTOK, Device("android", "10", "Honor STK-LX1", "TikTok", "tiktok", True)),
        (ANDROID_TIKTOK_TRILL, Device("android", "13", "SM-A546E", "TikTok", "tiktok", True)),
        (ANDROID_TIKTOK_TRILL_ONLY, Device("android", "14", None, "TikTok", "tiktok", True)),
        (ANDROID_CHROME, Device("android", "14", "Pixel 8", "Chrome Mobile", None, True)),
        (ANDROID_CHROME_REDUCED, Device("android", None, None, "Chrome Mobile", None, True)),
        (SAMSUNG_INTERNET, Device("android", "14", "SM-S918B", "Samsung Internet", None, True)),
        (IPAD_SAFARI, Device("ios", "17.4", "iPad", "Mobile Safari", None, True)),
        (INSTAGRAM_IPHONE, Device("ios", "17.0", "iPhone", "Instagram", "instagram", True)),
        (FACEBOOK_ANDROID, Device("android", "12", "SM-G991B", "Facebook", "facebook", True)),
        (WINDOWS_CHROME, Device("windows", "10", None, "Chrome", None, False)),
        (MACOS_SAFARI, Device("macos", None, "Mac", "Safari", None, False)),
        (LINUX_FIREFOX, Device("linux", None, None, "Firefox", None, False)),
        (UBUNTU_FIREFOX, Device("linux", None, None, "Firefox", None, False)),
        (CHROMEBOOK, Device("chromeos", "14541.0.0", None, "Chrome", None, False)),
        (CURL, Device(None, None, None, "curl", None, False)),
    ],
)
def test_parse_user_agent(ua: str, expected: Device) -> None:
    assert parse_user_agent(ua) == expected


@pytest.mark.parametrize("ua", [None, "", "   "])
def test_missing_user_agent_is_an_unknown_desktop_device(ua: str | None) -> None:
    assert parse_user_agent(ua) == UNKNOWN_DEVICE
    assert parse_user_agent(ua).is_mobile is False


def test_bots_are_not_mistaken_for_the_tiktok_app() -> None:
    # Its e-mail address says "tiktok.com", but TikTok's crawler is no in-app browser.
    assert parse_user_agent(TIKTOK_SPIDER).in_app is None
    assert parse_user_agent(GOOGLEBOT).device_model is None


def test_a_hostile_giant_user_agent_is_parsed_by_its_head() -> None:
    device = parse_user_agent(IPHONE_SAFARI + " x" * 100_000)
    assert (device.os_family, device.device_model) == ("ios", "iPhone")


@pytest.mark.parametrize(
    "ua",
    [
        IPHONE_SAFARI,
        IPHONE_TIKTOK,
        IPHONE_TIKTOK_OLDER,
        IPAD_TIKTOK,
        ANDROID_TIKTOK,
        ANDROID_TIKTOK_TRILL,
        ANDROID_TIKTOK_TRILL_ONLY,
        ANDROID_CHROME,
        ANDROID_CHROME_REDUCED,
        SAMSUNG_INTERNET,
        IPAD_SAFARI,
        INSTAGRAM_IPHONE,
        FACEBOOK_ANDROID,
        WINDOWS_CHROME,
        MACOS_SAFARI,
        LINUX_FIREFOX,
        CHROMEBOOK,
    ],
)
def test_real_browsers_are_human(ua: str) -> None:
    assert bot_verdict(ua) == BotVerdict("human", ())


@pytest.mark.parametrize(
    ("ua", "reason"),
    [
        (GOOGLEBOT, "crawler_ua"),
        (TIKTOK_SPIDER, "crawler_ua"),
        (APPLEBOT, "crawler_ua"),
        (CURL, "crawler_ua"),
        (FACEBOOKEXTERNALHIT, "preview_ua"),
        (IMESSAGE_PREVIEW, "preview_ua"),
        (SLACKBOT, "preview_ua"),
        (WHATSAPP, "preview_ua"),
        (TELEGRAMBOT, "preview_ua"),
        (TWITTERBOT, "preview_ua"),
        (DISCORDBOT, "preview_ua"),
        (LINKEDINBOT, "preview_ua"),
        (SKYPE_PREVIEW, "preview_ua"),
        (BLUESKY_CARDYB, "preview_ua"),
    ],
)
def test_crawlers_and_link_previews_are_bots(ua: str, reason: str) -> None:
    assert bot_verdict(ua) == BotVerdict("bot", (reason,))


@pytest.mark.parametrize("ua", [None, "", " \t"])
def test_no_user_agent_is_a_bot(ua: str | None) -> None:
    assert bot_verdict(ua) == BotVerdict("bot", ("no_ua",))


def test_head_request_is_a_bot_whatever_its_user_agent() -> None:
    assert bot_verdict(IPHONE_TIKTOK, method="HEAD") == BotVerdict("bot", ("head_request",))
    assert bot_verdict(IPHONE_TIKTOK, method="head").label == "bot"
    assert bot_verdict(SLACKBOT, method="HEAD").reasons == ("head_request", "preview_ua")


def test_burst_alone_makes_a_human_suspect() -> None:
    assert bot_verdict(ANDROID_TIKTOK, burst=True) == BotVerdict("suspect", ("burst_ip",))
    assert bot_verdict(ANDROID_TIKTOK, method="POST") == BotVerdict("human", ())


def test_burst_on_top_of_a_bot_keeps_it_a_bot_with_every_reason() -> None:
    assert bot_verdict(None, method="HEAD", burst=True) == BotVerdict(
        "bot", ("head_request", "no_ua", "burst_ip")
    )


PROXIES = (ip_network("10.0.0.0/8"), ip_network("2001:db8:ffff::/48"))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # No proxy: the socket peer is the visitor.
        ("203.0.113.7", None, "203.0.113.7"),
        # An untrusted peer cannot choose its own address by sending the header.
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        # Behind one trusted proxy.
        ("10.0.0.1", "203.0.113.7", "203.0.113.7"),
        # A client spoofing the header behind our proxy: only the proxy's own entry counts.
        ("10.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        # Through two trusted proxies (the CDN edge appended by the inner one).
        ("10.0.0.1", "203.0.113.7, 10.1.2.3", "203.0.113.7"),
        ("10.0.0.1", "6.6.6.6,203.0.113.7 ,10.1.2.3", "203.0.113.7"),
        # Every hop trusted: the left-most is the client.
        ("10.0.0.1", "10.9.9.9, 10.1.2.3", "10.9.9.9"),
        # A trusted proxy with an empty header.
        ("10.0.0.1", "", "10.0.0.1"),
        # Garbage in the chain: nothing in it can be believed.
        ("10.0.0.1", "203.0.113.7, not-an-ip", "10.0.0.1"),
        ("10.0.0.1", "unknown", "10.0.0.1"),
        ("10.0.0.1", "203.0.113.7,,", "10.0.0.1"),
        ("10.0.0.1", "999.1.1.1", "10.0.0.1"),
        # Garbage left of the first untrusted hop is never read.
        ("10.0.0.1", "garbage, 203.0.113.7", "203.0.113.7"),
        # Ports, as some proxies write them.
        ("10.0.0.1", "203.0.113.7:51234", "203.0.113.7"),
        ("10.0.0.1", "[2001:db8::7]:443", "2001:db8::7"),
        # IPv6 peers and clients, normalised to the short form.
        ("2001:db8:ffff::1", "2001:DB8:0:0:0:0:0:7", "2001:db8::7"),
        ("2001:db8::7", "203.0.113.9", "2001:db8::7"),
        # IPv4-mapped IPv6 is IPv4, for the peer (then trusted) and in the chain.
        ("::ffff:203.0.113.7", None, "203.0.113.7"),
        ("::ffff:10.0.0.1", "::ffff:203.0.113.7", "203.0.113.7"),
        # No usable peer: no address at all.
        (None, "203.0.113.7", None),
        ("testclient", None, None),
    ],
)
def test_client_ip(peer: str | None, forwarded_for: str | None, expected: str | None) -> None:
    assert client_ip(peer, forwarded_for, PROXIES) == expected


def test_client_ip_without_trusted_proxies_ignores_the_header() -> None:
    assert client_ip("10.0.0.1", "203.0.113.7", ()) == "10.0.0.1"


def test_parse_networks() -> None:
    assert parse_networks("10.0.0.0/8, 127.0.0.1,::1 , 2001:db8::/32,") == (
        ip_network("10.0.0.0/8"),
        ip_network("127.0.0.1/32"),
        ip_network("::1/128"),
        ip_network("2001:db8::/32"),
    )
    assert parse_networks("") == ()
    # Host bits after the prefix mean the network the prefix names.
    assert parse_networks("192.168.1.1/24") == (ip_network("192.168.1.0/24"),)


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "localhost", "10.0.0.0/8 127.0.0.1"])
def test_parse_networks_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(ValueError, match=f"'{bad}'"):
        parse_networks(f"127.0.0.1, {bad}")
