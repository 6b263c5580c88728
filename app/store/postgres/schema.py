"""The PostgreSQL schema: the SQLite backend's named migrations, in PostgreSQL's dialect.

Same names, same order (`0001_initial`, `0002_outbox_delivery`, `0003_install_reinstall_of`,
`0004_reporting`, `0005_hardening`, `0007_console`, `0008_config_version`, `0009_tiktok_ads`,
`0010_audiences`),
recorded in `gangway_migrations`; a database that has run a migration this code does not know
is newer than the code, and the store refuses to open it (an old node must not write into a
schema it does not understand). Nodes starting together take an advisory lock, so one of them
migrates and the others find it done.

Where PostgreSQL needs another shape for the same promise, 0001 says so:
- touches (`impressions`, `clicks`) are partitioned by day on `time` (UTC days of Unix
  seconds), so candidate lookups and retention touch recent partitions only. A partitioned
  table's unique keys must hold the partition key, so the keys that must be unique across all
  days live in small tables of their own: `page_views (app_key, pvid)` (one impression per page
  view) and `click_claims (click_id)` (one install per click: the constraint decides a race
  between nodes);
- flags are `boolean`, counters `bigint` identities, times `double precision` (Unix seconds, as
  the domain has them); JSON documents stay text, exactly as sent (a lone surrogate escaped), so
  a copied SQLite row and a written one are the same;
- `postbacks.seq` keeps queue order and `privacy_erasures.seq` insertion order (SQLite's
  rowid); `postbacks.lease_until` says until when a node holds a postback it is sending;
  `job_leases` holds the cluster-wide leases of scheduled jobs;
- rollups are added with `INSERT ... ON CONFLICT DO UPDATE` in the counted row's transaction,
  so concurrent writers on several nodes each add their own (`rollups.py`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from psycopg import sql

from app.store.postgres.connections import Conn

# An arbitrary constant: the advisory lock nodes take while migrating.
MIGRATION_LOCK = 0x6761_6E67_7761_7901

_TOUCH_COLUMNS = """
    id text NOT NULL,
    app_key text NOT NULL,
    page_slug text,
    pvid text,
    time double precision NOT NULL,
    ip text,
    user_agent text,
    os_family text,
    os_version text,
    device_model text,
    browser text,
    in_app text,
    language text,
    country text,
    region text,
    gpc boolean NOT NULL DEFAULT false,
    pid text,
    c text, af_c_id text, af_adset text, af_adset_id text, af_ad text, af_ad_id text,
    af_channel text, af_siteid text,
    af_sub1 text, af_sub2 text, af_sub3 text, af_sub4 text, af_sub5 text,
    deep_link_value text,
    ttclid text,
    params text NOT NULL DEFAULT '{}',
    original_url text,
    referrer text,
    verdict text NOT NULL DEFAULT 'human',
    verdict_reasons text NOT NULL DEFAULT '',
    flags text NOT NULL DEFAULT ''
"""

INITIAL = f"""
CREATE TABLE apps (
    app_key text PRIMARY KEY,
    name text NOT NULL,
    sdk_key text NOT NULL UNIQUE,
    config text NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE integrations (
    app_key text NOT NULL REFERENCES apps(app_key) ON DELETE CASCADE,
    partner text NOT NULL,
    config text NOT NULL,
    access_token text,
    updated_at double precision NOT NULL,
    PRIMARY KEY (app_key, partner)
);
CREATE TABLE pages (
    slug text PRIMARY KEY,
    app_key text NOT NULL REFERENCES apps(app_key) ON DELETE CASCADE,
    config text NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL
);
CREATE TABLE impressions ({_TOUCH_COLUMNS}, PRIMARY KEY (id, time)) PARTITION BY RANGE (time);
CREATE INDEX impressions_match ON impressions (app_key, ip, time);
CREATE INDEX impressions_time ON impressions (app_key, time);
CREATE TABLE page_views (
    app_key text NOT NULL,
    pvid text NOT NULL,
    impression_id text NOT NULL,
    time double precision NOT NULL,
    original_url text,
    page_slug text,
    PRIMARY KEY (app_key, pvid)
);
CREATE INDEX page_views_time ON page_views (time);
CREATE TABLE clicks (
    {_TOUCH_COLUMNS},
    platform text,
    destination text,
    claimed_by text,
    claimed_at double precision,
    PRIMARY KEY (id, time)
) PARTITION BY RANGE (time);
CREATE INDEX clicks_match ON clicks (app_key, ip, time);
CREATE INDEX clicks_time ON clicks (app_key, time);
CREATE INDEX clicks_pvid ON clicks (app_key, pvid) WHERE pvid IS NOT NULL;
CREATE TABLE click_claims (
    click_id text PRIMARY KEY,
    app_key text NOT NULL,
    claimed_by text NOT NULL,
    claimed_at double precision NOT NULL
);
CREATE TABLE installs (
    id text PRIMARY KEY,
    app_key text NOT NULL,
    app_instance_id text NOT NULL,
    platform text NOT NULL,
    time double precision NOT NULL,
    received_at double precision NOT NULL,
    ip text,
    user_agent text,
    os_version text,
    device_model text,
    language text,
    idfa text, idfv text, gaid text, android_id text,
    att_status text,
    install_referrer text,
    status text NOT NULL,
    match_type text,
    touch_type text,
    touch_id text,
    touch_time double precision,
    media_source text NOT NULL,
    original_media_source text,
    campaign text, campaign_id text, adset text, adset_id text, ad text, ad_id text,
    channel text, site_id text,
    af_sub1 text, af_sub2 text, af_sub3 text, af_sub4 text, af_sub5 text,
    ttclid text,
    deep_link_value text,
    original_url text,
    country text,
    region text,
    is_limited_data_use boolean NOT NULL DEFAULT false,
    is_retained_organic boolean NOT NULL DEFAULT false,
    receipt text NOT NULL,
    answer text NOT NULL,
    UNIQUE (app_key, app_instance_id)
);
CREATE INDEX installs_time ON installs (app_key, time);
CREATE INDEX installs_idfv ON installs (app_key, idfv, time) WHERE idfv IS NOT NULL;
CREATE INDEX installs_idfa ON installs (app_key, idfa, time) WHERE idfa IS NOT NULL;
CREATE INDEX installs_gaid ON installs (app_key, gaid, time) WHERE gaid IS NOT NULL;
CREATE INDEX installs_android_id ON installs (app_key, android_id, time)
    WHERE android_id IS NOT NULL;
CREATE TABLE events (
    id text PRIMARY KEY,
    app_key text NOT NULL,
    event_id text NOT NULL,
    install_id text NOT NULL REFERENCES installs(id) ON DELETE CASCADE,
    app_instance_id text NOT NULL,
    event_name text NOT NULL,
    event_time double precision NOT NULL,
    received_at double precision NOT NULL,
    revenue text,
    currency text,
    event_value text NOT NULL DEFAULT '{{}}',
    media_source text NOT NULL,
    postback text NOT NULL,
    answer text NOT NULL,
    UNIQUE (app_key, event_id)
);
CREATE INDEX events_time ON events (app_key, event_time);
CREATE INDEX events_install ON events (install_id);
CREATE TABLE postbacks (
    id text PRIMARY KEY,
    seq bigint GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    app_key text NOT NULL,
    partner text NOT NULL,
    kind text NOT NULL,
    subject_id text NOT NULL,
    event text NOT NULL,
    payload text NOT NULL,
    state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    created_at double precision NOT NULL,
    next_attempt_at double precision NOT NULL,
    last_attempt_at double precision,
    last_http_status integer,
    last_code bigint,
    last_message text,
    sent_at double precision,
    lease_until double precision
);
CREATE INDEX postbacks_due ON postbacks (state, next_attempt_at);
CREATE INDEX postbacks_subject ON postbacks (subject_id);
CREATE TABLE postback_attempts (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    postback_id text NOT NULL REFERENCES postbacks(id) ON DELETE CASCADE,
    time double precision NOT NULL,
    http_status integer,
    code bigint,
    message text,
    request_id text
);
CREATE INDEX postback_attempts_postback ON postback_attempts (postback_id);
CREATE TABLE cost (
    date text NOT NULL,
    app_key text NOT NULL,
    media_source text NOT NULL,
    campaign text NOT NULL DEFAULT '', campaign_id text NOT NULL DEFAULT '',
    adset text NOT NULL DEFAULT '', adset_id text NOT NULL DEFAULT '',
    ad text NOT NULL DEFAULT '', ad_id text NOT NULL DEFAULT '',
    country text NOT NULL DEFAULT '',
    cost text NOT NULL,
    currency text NOT NULL,
    PRIMARY KEY (date, app_key, media_source, campaign, campaign_id, adset, adset_id,
                 ad, ad_id, country)
);
CREATE TABLE rollups (
    date text NOT NULL,
    app_key text NOT NULL,
    media_source text NOT NULL DEFAULT '',
    campaign text NOT NULL DEFAULT '', campaign_id text NOT NULL DEFAULT '',
    adset text NOT NULL DEFAULT '', adset_id text NOT NULL DEFAULT '',
    ad text NOT NULL DEFAULT '', ad_id text NOT NULL DEFAULT '',
    country text NOT NULL DEFAULT '', platform text NOT NULL DEFAULT '',
    metric text NOT NULL,
    value text NOT NULL DEFAULT '0',
    PRIMARY KEY (date, app_key, media_source, campaign, campaign_id, adset, adset_id,
                 ad, ad_id, country, platform, metric)
);
CREATE TABLE tokens (
    id text PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    label text NOT NULL DEFAULT '',
    created_at double precision NOT NULL,
    last_used_at double precision
);
CREATE TABLE users (
    username text PRIMARY KEY,
    password_hash text NOT NULL,
    created_at double precision NOT NULL
);
CREATE TABLE job_leases (
    name text PRIMARY KEY,
    holder text NOT NULL,
    until double precision NOT NULL
)
"""

OUTBOX_DELIVERY = """
ALTER TABLE postbacks ADD COLUMN retry_since double precision;
ALTER TABLE postbacks ADD COLUMN retry_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE postbacks ADD COLUMN last_request_id text;
ALTER TABLE postback_attempts ADD COLUMN state text;
ALTER TABLE postback_attempts ADD COLUMN pixel_code text;
ALTER TABLE postback_attempts ADD COLUMN test_event_code text;
ALTER TABLE postback_attempts ADD COLUMN batch_size integer
"""

INSTALL_REINSTALL_OF = "ALTER TABLE installs ADD COLUMN reinstall_of text"

_DIMS = """
    media_source text NOT NULL DEFAULT '',
    campaign text NOT NULL DEFAULT '', campaign_id text NOT NULL DEFAULT '',
    adset text NOT NULL DEFAULT '', adset_id text NOT NULL DEFAULT '',
    ad text NOT NULL DEFAULT '', ad_id text NOT NULL DEFAULT '',
    country text NOT NULL DEFAULT ''"""

# SQLite's 0004: rollups by UTC hour (and by media source alone), cost with its source and
# converted amount, currency rates, the erase log, and the indexes retention and erase use. The
# 0001 `rollups` and `cost` tables were never written, so they are dropped and made again.
REPORTING = f"""
DROP TABLE rollups;
DROP TABLE cost;
CREATE TABLE rollups (
    app_key text NOT NULL,
    hour bigint NOT NULL,
    {_DIMS},
    platform text NOT NULL DEFAULT '',
    metric text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (app_key, hour, media_source, campaign, campaign_id, adset, adset_id,
                 ad, ad_id, country, platform, metric)
);
CREATE TABLE rollups_by_source (
    app_key text NOT NULL,
    hour bigint NOT NULL,
    media_source text NOT NULL DEFAULT '',
    metric text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (app_key, hour, media_source, metric)
);
CREATE TABLE cost (
    app_key text NOT NULL,
    date text NOT NULL,
    source text NOT NULL,
    {_DIMS},
    cost text NOT NULL,
    currency text NOT NULL,
    amount bigint NOT NULL,
    report_currency text NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (app_key, date, source, media_source, campaign, campaign_id, adset,
                 adset_id, ad, ad_id, country)
);
CREATE TABLE cost_rates (
    app_key text NOT NULL,
    date text NOT NULL,
    currency text NOT NULL,
    rate text NOT NULL,
    updated_at double precision NOT NULL,
    PRIMARY KEY (app_key, date, currency)
);
CREATE TABLE privacy_erasures (
    id text PRIMARY KEY,
    seq bigint GENERATED BY DEFAULT AS IDENTITY UNIQUE,
    time double precision NOT NULL,
    actor text NOT NULL,
    key_kind text NOT NULL,
    app_key text,
    counts text NOT NULL
);
CREATE INDEX installs_ttclid ON installs (ttclid) WHERE ttclid IS NOT NULL;
CREATE INDEX installs_reinstall_of ON installs (reinstall_of) WHERE reinstall_of IS NOT NULL;
CREATE INDEX installs_retention ON installs (media_source, time)
    WHERE NOT is_retained_organic;
CREATE INDEX clicks_ttclid ON clicks (ttclid) WHERE ttclid IS NOT NULL;
CREATE INDEX clicks_claimed_by ON clicks (app_key, claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX impressions_ttclid ON impressions (ttclid) WHERE ttclid IS NOT NULL
"""

# SQLite's 0005: when a limited-data-use install was masked; the partial index finds the ones
# still to mask.
HARDENING = """
ALTER TABLE installs ADD COLUMN masked_at double precision;
CREATE INDEX installs_ldu_unmasked ON installs (time)
    WHERE is_limited_data_use AND masked_at IS NULL
"""

# SQLite's 0007: console roles and app limits, server-side sessions, failed logins, and the
# console's newest-first list of an app's postbacks.
CONSOLE = """
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'admin';
ALTER TABLE users ADD COLUMN apps text;
CREATE TABLE sessions (
    id text PRIMARY KEY,
    username text NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at double precision NOT NULL,
    last_seen_at double precision NOT NULL,
    revoked_at double precision
);
CREATE INDEX sessions_user ON sessions (username);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);
CREATE TABLE login_failures (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    username text NOT NULL,
    ip text,
    time double precision NOT NULL
);
CREATE INDEX login_failures_user ON login_failures (username, time);
CREATE INDEX login_failures_ip ON login_failures (ip, time);
CREATE INDEX login_failures_time ON login_failures (time);
CREATE INDEX postbacks_app_created ON postbacks (app_key, created_at)
"""

# SQLite's 0009: the TikTok Ads connection. `oauth_states.nonce` is the primary key, so a
# state is used once across every node: the constraint decides a race. The pull log's days
# are ISO text, as `cost.date`.
TIKTOK_ADS = """
ALTER TABLE cost ADD COLUMN account text NOT NULL DEFAULT '';
CREATE INDEX cost_pull_scope ON cost (app_key, source, account, date);
CREATE TABLE tiktok_ads_state (
    app_key text PRIMARY KEY,
    state text NOT NULL,
    message text,
    advertisers text NOT NULL DEFAULT '[]',
    updated_at double precision NOT NULL
);
CREATE TABLE tiktok_ads_pulls (
    id text PRIMARY KEY,
    app_key text NOT NULL,
    trigger text NOT NULL,
    started_at double precision NOT NULL,
    finished_at double precision,
    start_date text,
    end_date text,
    rows bigint NOT NULL DEFAULT 0,
    changed bigint NOT NULL DEFAULT 0,
    spend text NOT NULL DEFAULT '0',
    currency text NOT NULL DEFAULT '',
    superseded bigint NOT NULL DEFAULT 0,
    requests bigint NOT NULL DEFAULT 0,
    error text
);
CREATE INDEX tiktok_ads_pulls_app ON tiktok_ads_pulls (app_key, started_at);
CREATE TABLE oauth_states (
    nonce text PRIMARY KEY,
    used_at double precision NOT NULL
);
CREATE INDEX oauth_states_used ON oauth_states (used_at)
"""

# SQLite's 0010: audiences and their members by hash. `syncing_until` is the lease of the
# sync running now: `start_sync` takes it with one conditional UPDATE, whose row lock orders
# two nodes asking at once. `sent` is a boolean here. The partial indexes hold the advertising
# IDs of an app's limited-data-use installs, the set each page of members is checked against
# (`audiences.member_sql`): reading it costs those few rows, not the app's installs.
AUDIENCES = """
CREATE INDEX installs_ldu_idfa ON installs (app_key, idfa)
    WHERE is_limited_data_use AND idfa IS NOT NULL;
CREATE INDEX installs_ldu_gaid ON installs (app_key, gaid)
    WHERE is_limited_data_use AND gaid IS NOT NULL;
CREATE TABLE audiences (
    id text PRIMARY KEY,
    app_key text NOT NULL REFERENCES apps(app_key) ON DELETE CASCADE,
    name text NOT NULL,
    config text NOT NULL,
    tiktok_audience_id text,
    state text NOT NULL,
    member_count bigint NOT NULL DEFAULT 0,
    sent_count bigint NOT NULL DEFAULT 0,
    sync_run bigint NOT NULL DEFAULT 0,
    syncing_until double precision,
    last_sync_at double precision,
    last_error text,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    UNIQUE (app_key, name)
);
CREATE TABLE audience_members (
    audience_id text NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
    hash text NOT NULL,
    sent boolean NOT NULL DEFAULT false,
    seen_run bigint NOT NULL,
    PRIMARY KEY (audience_id, hash)
)
"""

CONFIG_VERSION = """
CREATE TABLE config_version (
    id integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0)
"""

# Appended, never edited: a database in the field has already run the old ones.
MIGRATIONS: Sequence[tuple[str, str]] = (
    ("0001_initial", INITIAL),
    ("0002_outbox_delivery", OUTBOX_DELIVERY),
    ("0003_install_reinstall_of", INSTALL_REINSTALL_OF),
    ("0004_reporting", REPORTING),
    ("0005_hardening", HARDENING),
    ("0007_console", CONSOLE),
    ("0008_config_version", CONFIG_VERSION),
    ("0009_tiktok_ads", TIKTOK_ADS),
    ("0010_audiences", AUDIENCES),
)


class SchemaTooNew(RuntimeError):
    """The database has run migrations this code does not know: it belongs to a newer Gangway."""


async def migrate(conn: Conn) -> list[str]:
    """Apply the pending migrations on `conn` (autocommit); answers the names applied."""
    await conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS gangway_migrations "
            "(name text PRIMARY KEY, applied_at double precision NOT NULL)"
        )
        cursor = await conn.execute("SELECT name FROM gangway_migrations")
        done = {str(row["name"]) for row in await cursor.fetchall()}
        known = {name for name, _ in MIGRATIONS}
        unknown = sorted(done - known)
        if unknown:
            raise SchemaTooNew(
                f"the database's schema is newer than this Gangway (it has run {unknown}); "
                "upgrade this node before starting it"
            )
        applied = []
        for name, statements in MIGRATIONS:
            if name in done:
                continue
            async with conn.transaction():
                for statement in statements.split(";"):
                    if statement.strip():
                        await conn.execute(sql.SQL(statement))
                await conn.execute(
                    "INSERT INTO gangway_migrations (name, applied_at) VALUES (%s, %s)",
                    [name, time.time()],
                )
            applied.append(name)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
