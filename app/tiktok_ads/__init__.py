"""TikTok Ads: the advertiser connection, the cost pull and the customer-file API client.

`client` talks to TikTok's Marketing API (the only module here with a network); `connection`
checks and shapes the `tiktok_ads` integration; `cost` plans report windows and maps report
rows to cost rows; `oauth` signs and reads the consent `state`. All but `client` are pure.
"""
