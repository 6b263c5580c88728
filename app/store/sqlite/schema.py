"""The database schema, as named migrations applied in order at start-up.

Times are Unix seconds (REAL, UTC), like the domain. JSON columns hold what the spec calls
"all incoming params", configs and receipts. A new migration is appended, never edited: a
database in the field has already run the old ones.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("gangway")

# Columns every touch (impression or click) has; see http-api.md section 1, "Stored".
_TOUCH_COLUMNS = """
    id TEXT PRIMARY KEY,
    app_key TEXT NOT NULL,
    page_slug TEXT,
    pvid TEXT,
    time REAL NOT NULL,
    ip TEXT,
    user_agent TEXT,
    os_family TEXT,
    os_version TEXT,
    device_model TEXT,
    browser TEXT,
    in_app TEXT,
    language TEXT,
    country TEXT,
    region TEXT,
    gpc INTEGER NOT NULL DEFAULT 0,
    pid TEXT,
    c TEXT, af_c_id TEXT, af_adset TEXT, af_adset_id TEXT, af_ad TEXT, af_ad_id TEXT,
    af_channel TEXT, af_siteid TEXT,
    af_sub1 TEXT, af_sub2 TEXT, af_sub3 TEXT, af_sub4 TEXT, af_sub5 TEXT,
    deep_link_value TEXT,
    ttclid TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    original_url TEXT,
    referrer TEXT,
    verdict TEXT NOT NULL DEFAULT 'human',
    verdict_reasons TEXT NOT NULL DEFAULT '',
    flags TEXT NOT NULL DEFAULT ''
"""


def _run(db: Database, statements: str) -> None:
    # Not executescript(): it COMMITs first, and migrations run inside a transaction.
    for statement in statements.split(";"):
        if statement.strip():
            db.execute(statement)


@migrations(name="0001_initial")
def initial(db: Database) -> None:
    _run(
        db,
        f"""
        CREATE TABLE apps (
            app_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            sdk_key TEXT NOT NULL UNIQUE,
            config TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE integrations (
            app_key TEXT NOT NULL REFERENCES apps(app_key) ON DELETE CASCADE,
            partner TEXT NOT NULL,
            config TEXT NOT NULL,
            access_token TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (app_key, partner)
        );
        CREATE TABLE pages (
            slug TEXT PRIMARY KEY,
            app_key TEXT NOT NULL REFERENCES apps(app_key) ON DELETE CASCADE,
            config TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE impressions ({_TOUCH_COLUMNS});
        CREATE UNIQUE INDEX impressions_pvid ON impressions(app_key, pvid) WHERE pvid IS NOT NULL;
        CREATE INDEX impressions_match ON impressions(app_key, ip, time);
        CREATE INDEX impressions_time ON impressions(app_key, time);
        CREATE TABLE clicks (
            {_TOUCH_COLUMNS},
            platform TEXT,
            destination TEXT,
            claimed_by TEXT,
            claimed_at REAL
        );
        CREATE INDEX clicks_match ON clicks(app_key, ip, time);
        CREATE INDEX clicks_time ON clicks(app_key, time);
        CREATE INDEX clicks_pvid ON clicks(app_key, pvid) WHERE pvid IS NOT NULL;
        CREATE TABLE installs (
            id TEXT PRIMARY KEY,
            app_key TEXT NOT NULL,
            app_instance_id TEXT NOT NULL,
            platform TEXT NOT NULL,
            time REAL NOT NULL,
            received_at REAL NOT NULL,
            ip TEXT,
            user_agent TEXT,
            os_version TEXT,
            device_model TEXT,
            language TEXT,
            idfa TEXT, idfv TEXT, gaid TEXT, android_id TEXT,
            att_status TEXT,
            install_referrer TEXT,
            status TEXT NOT NULL,
            match_type TEXT,
            touch_type TEXT,
            touch_id TEXT,
            touch_time REAL,
            media_source TEXT NOT NULL,
            original_media_source TEXT,
            campaign TEXT, campaign_id TEXT, adset TEXT, adset_id TEXT, ad TEXT, ad_id TEXT,
            channel TEXT, site_id TEXT,
            af_sub1 TEXT, af_sub2 TEXT, af_sub3 TEXT, af_sub4 TEXT, af_sub5 TEXT,
            ttclid TEXT,
            deep_link_value TEXT,
            original_url TEXT,
            country TEXT,
            region TEXT,
            is_limited_data_use INTEGER NOT NULL DEFAULT 0,
            is_retained_organic INTEGER NOT NULL DEFAULT 0,
            receipt TEXT NOT NULL,
            answer TEXT NOT NULL,
            UNIQUE (app_key, app_instance_id)
        );
        CREATE INDEX installs_time ON installs(app_key, time);
        CREATE INDEX installs_idfv ON installs(app_key, idfv) WHERE idfv IS NOT NULL;
        CREATE INDEX installs_idfa ON installs(app_key, idfa) WHERE idfa IS NOT NULL;
        CREATE INDEX installs_gaid ON installs(app_key, gaid) WHERE gaid IS NOT NULL;
        CREATE INDEX installs_android_id ON installs(app_key, android_id)
            WHERE android_id IS NOT NULL;
        CREATE TABLE events (
            id TEXT PRIMARY KEY,
            app_key TEXT NOT NULL,
            event_id TEXT NOT NULL,
            install_id TEXT NOT NULL REFERENCES installs(id) ON DELETE CASCADE,
            app_instance_id TEXT NOT NULL,
            event_name TEXT NOT NULL,
            event_time REAL NOT NULL,
            received_at REAL NOT NULL,
            revenue TEXT,
            currency TEXT,
            event_value TEXT NOT NULL DEFAULT '{{}}',
            media_source TEXT NOT NULL,
            postback TEXT NOT NULL,
            answer TEXT NOT NULL,
            UNIQUE (app_key, event_id)
        );
        CREATE INDEX events_time ON events(app_key, event_time);
        CREATE INDEX events_install ON events(install_id);
        CREATE TABLE postbacks (
            id TEXT PRIMARY KEY,
            app_key TEXT NOT NULL,
            partner TEXT NOT NULL,
            kind TEXT NOT NULL,
            subject_id TEXT NOT NULL,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            last_attempt_at REAL,
            last_http_status INTEGER,
            last_code INTEGER,
            last_message TEXT,
            sent_at REAL
        );
        CREATE INDEX postbacks_due ON postbacks(state, next_attempt_at);
        CREATE INDEX postbacks_subject ON postbacks(subject_id);
        CREATE TABLE postback_attempts (
            id INTEGER PRIMARY KEY,
            postback_id TEXT NOT NULL REFERENCES postbacks(id) ON DELETE CASCADE,
            time REAL NOT NULL,
            http_status INTEGER,
            code INTEGER,
            message TEXT,
            request_id TEXT
        );
        CREATE INDEX postback_attempts_postback ON postback_attempts(postback_id);
        CREATE TABLE cost (
            date TEXT NOT NULL,
            app_key TEXT NOT NULL,
            media_source TEXT NOT NULL,
            campaign TEXT NOT NULL DEFAULT '', campaign_id TEXT NOT NULL DEFAULT '',
            adset TEXT NOT NULL DEFAULT '', adset_id TEXT NOT NULL DEFAULT '',
            ad TEXT NOT NULL DEFAULT '', ad_id TEXT NOT NULL DEFAULT '',
            country TEXT NOT NULL DEFAULT '',
            cost TEXT NOT NULL,
            currency TEXT NOT NULL,
            PRIMARY KEY (date, app_key, media_source, campaign, campaign_id, adset, adset_id,
                         ad, ad_id, country)
        );
        CREATE TABLE rollups (
            date TEXT NOT NULL,
            app_key TEXT NOT NULL,
            media_source TEXT NOT NULL DEFAULT '',
            campaign TEXT NOT NULL DEFAULT '', campaign_id TEXT NOT NULL DEFAULT '',
            adset TEXT NOT NULL DEFAULT '', adset_id TEXT NOT NULL DEFAULT '',
            ad TEXT NOT NULL DEFAULT '', ad_id TEXT NOT NULL DEFAULT '',
            country TEXT NOT NULL DEFAULT '', platform TEXT NOT NULL DEFAULT '',
            metric TEXT NOT NULL,
            value TEXT NOT NULL DEFAULT '0',
            PRIMARY KEY (date, app_key, media_source, campaign, campaign_id, adset, adset_id,
                         ad, ad_id, country, platform, metric)
        );
        CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            last_used_at REAL
        );
        CREATE TABLE users (
            username TEXT PRIMARY KEY,
            password_hash TEXT NOT NULL,
            created_at REAL NOT NULL
        )
        """,
    )


def migrate(db: Database) -> None:
    migrations.apply(db)


@migrations(name="0002_outbox_delivery")
def outbox_delivery(db: Database) -> None:
    """What delivery needs beyond 0001: a run of retries that the owner's retry restarts, and
    per attempt the request envelope (so "the exact JSON sent" survives a config change) and the
    state the attempt left its postback in."""
    for statement in (
        # Start of the current run of retries (NULL: the postback's created_at). An owner's
        # retry restarts the run, so a revived postback gets its own 24 hours and 1 s backoff.
        "ALTER TABLE postbacks ADD COLUMN retry_since REAL",
        "ALTER TABLE postbacks ADD COLUMN retry_attempts INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE postbacks ADD COLUMN last_request_id TEXT",
        "ALTER TABLE postback_attempts ADD COLUMN state TEXT",
        "ALTER TABLE postback_attempts ADD COLUMN pixel_code TEXT",
        "ALTER TABLE postback_attempts ADD COLUMN test_event_code TEXT",
        "ALTER TABLE postback_attempts ADD COLUMN batch_size INTEGER",
    ):
        db.execute(statement)


@migrations(name="0003_install_reinstall_of")
def install_reinstall_of(db: Database) -> None:
    """A reinstall names the first install of its device (attribution.md section 4): its events
    carry that install's attribution. NULL for every install that is not a reinstall."""
    db.execute("ALTER TABLE installs ADD COLUMN reinstall_of TEXT")


@migrations(name="0004_reporting")
def reporting(db: Database) -> None:
    """Reports (reporting.md): rollups by UTC hour (by every dimension, and by media source
    alone for the headline figures, which then read a few rows an hour), cost with its source
    and converted amount, the owner's currency rates, the privacy erase log, and the indexes
    retention and erase look rows up by. The 0001 `rollups` and `cost` tables were never
    written, so they are dropped and made again."""
    dims = """
        media_source TEXT NOT NULL DEFAULT '',
        campaign TEXT NOT NULL DEFAULT '', campaign_id TEXT NOT NULL DEFAULT '',
        adset TEXT NOT NULL DEFAULT '', adset_id TEXT NOT NULL DEFAULT '',
        ad TEXT NOT NULL DEFAULT '', ad_id TEXT NOT NULL DEFAULT '',
        country TEXT NOT NULL DEFAULT ''"""
    _run(
        db,
        f"""
        DROP TABLE rollups;
        DROP TABLE cost;
        CREATE TABLE rollups (
            app_key TEXT NOT NULL,
            hour INTEGER NOT NULL,
            {dims},
            platform TEXT NOT NULL DEFAULT '',
            metric TEXT NOT NULL,
            value INTEGER NOT NULL,
            PRIMARY KEY (app_key, hour, media_source, campaign, campaign_id, adset, adset_id,
                         ad, ad_id, country, platform, metric)
        ) WITHOUT ROWID;
        CREATE TABLE rollups_by_source (
            app_key TEXT NOT NULL,
            hour INTEGER NOT NULL,
            media_source TEXT NOT NULL DEFAULT '',
            metric TEXT NOT NULL,
            value INTEGER NOT NULL,
            PRIMARY KEY (app_key, hour, media_source, metric)
        ) WITHOUT ROWID;
        CREATE TABLE cost (
            app_key TEXT NOT NULL,
            date TEXT NOT NULL,
            source TEXT NOT NULL,
            {dims},
            cost TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount INTEGER NOT NULL,
            report_currency TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (app_key, date, source, media_source, campaign, campaign_id, adset,
                         adset_id, ad, ad_id, country)
        ) WITHOUT ROWID;
        CREATE TABLE cost_rates (
            app_key TEXT NOT NULL,
            date TEXT NOT NULL,
            currency TEXT NOT NULL,
            rate TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (app_key, date, currency)
        ) WITHOUT ROWID;
        CREATE TABLE privacy_erasures (
            id TEXT PRIMARY KEY,
            time REAL NOT NULL,
            actor TEXT NOT NULL,
            key_kind TEXT NOT NULL,
            app_key TEXT,
            counts TEXT NOT NULL
        );
        CREATE INDEX installs_ttclid ON installs(ttclid) WHERE ttclid IS NOT NULL;
        CREATE INDEX installs_reinstall_of ON installs(reinstall_of) WHERE reinstall_of IS NOT NULL;
        CREATE INDEX installs_retention ON installs(media_source, time)
            WHERE is_retained_organic = 0;
        CREATE INDEX clicks_ttclid ON clicks(ttclid) WHERE ttclid IS NOT NULL;
        CREATE INDEX clicks_claimed_by ON clicks(app_key, claimed_by) WHERE claimed_by IS NOT NULL;
        CREATE INDEX impressions_ttclid ON impressions(ttclid) WHERE ttclid IS NOT NULL
        """,
    )


@migrations(name="0005_hardening")
def hardening(db: Database) -> None:
    """When a limited-data-use install had what attribution no longer needs masked (its IP cut,
    its ad ids removed: `mask_limited_installs`); NULL until then. The partial index finds the
    ones still to mask without reading the others."""
    db.execute("ALTER TABLE installs ADD COLUMN masked_at REAL")
    db.execute(
        "CREATE INDEX installs_ldu_unmasked ON installs(time) "
        "WHERE is_limited_data_use = 1 AND masked_at IS NULL"
    )


@migrations(name="0007_console")
def console(db: Database) -> None:
    """The console's accounts (console.md section 1): a user's role and the apps it is limited
    to (NULL: all), server-side sessions (so logout revokes a cookie even if it is replayed)
    and failed logins (throttling); the console lists an app's postbacks newest first."""
    _run(
        db,
        """
        ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
        ALTER TABLE users ADD COLUMN apps TEXT;
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            revoked_at REAL
        );
        CREATE INDEX sessions_user ON sessions(username);
        CREATE TABLE login_failures (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL,
            ip TEXT,
            time REAL NOT NULL
        );
        CREATE INDEX login_failures_user ON login_failures(username, time);
        CREATE INDEX login_failures_ip ON login_failures(ip, time);
        CREATE INDEX postbacks_app_created ON postbacks(app_key, created_at)
        """,
    )


@migrations(name="0008_config_version")
def config_version(db: Database) -> None:
    """One row counting configuration writes: every write to apps, pages or integrations bumps
    it in its own transaction, so each process can keep configs in memory and know, with one
    primary-key read, that a write elsewhere made them stale."""
    _run(
        db,
        """
        CREATE TABLE config_version (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        );
        INSERT INTO config_version (id, version) VALUES (1, 0)
        """,
    )


@migrations(name="0009_tiktok_ads")
def tiktok_ads(db: Database) -> None:
    """The TikTok Ads connection (tiktok-ads.md sections 1 and 2): which advertiser account a
    pulled cost row came from (`account`, '' for uploaded rows), so a pull replaces the rows of
    its own advertiser and days only; the connection's state and its advertisers' currency and
    time zone; the log of pulls; and the OAuth states already used (single use)."""
    _run(
        db,
        """
        ALTER TABLE cost ADD COLUMN account TEXT NOT NULL DEFAULT '';
        CREATE INDEX cost_pull_scope ON cost(app_key, source, account, date);
        CREATE TABLE tiktok_ads_state (
            app_key TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            message TEXT,
            advertisers TEXT NOT NULL DEFAULT '[]',
            updated_at REAL NOT NULL
        );
        CREATE TABLE tiktok_ads_pulls (
            id TEXT PRIMARY KEY,
            app_key TEXT NOT NULL,
            trigger TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            start_date TEXT,
            end_date TEXT,
            rows INTEGER NOT NULL DEFAULT 0,
            changed INTEGER NOT NULL DEFAULT 0,
            spend TEXT NOT NULL DEFAULT '0',
            currency TEXT NOT NULL DEFAULT '',
            superseded INTEGER NOT NULL DEFAULT 0,
            requests INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE INDEX tiktok_ads_pulls_app ON tiktok_ads_pulls(app_key, started_at);
        CREATE TABLE oauth_states (
            nonce TEXT PRIMARY KEY,
            used_at REAL NOT NULL
        )
        """,
    )


@migrations(name="0010_audiences")
def audiences(db: Database) -> None:
    """Audiences (tiktok-ads.md section 3): each rule with its TikTok audience and the state of
    its last sync, and its members by hash. `sent` is set only once TikTok answered code 0 for
    the file holding the member, so a sync cut off half way resumes from what TikTok holds;
    `seen_run` is the last sync that wanted the member (members not seen by the current sync
    are the departed). `syncing_until` is the lease of the sync running now (the server's
    daily run and the command line must not interleave their runs)."""
    _run(
        db,
        """
        CREATE TABLE audiences (
            id TEXT PRIMARY KEY,
            app_key TEXT NOT NULL REFERENCES apps(app_key) ON DELETE CASCADE,
            name TEXT NOT NULL,
            config TEXT NOT NULL,
            tiktok_audience_id TEXT,
            state TEXT NOT NULL,
            member_count INTEGER NOT NULL DEFAULT 0,
            sent_count INTEGER NOT NULL DEFAULT 0,
            sync_run INTEGER NOT NULL DEFAULT 0,
            syncing_until REAL,
            last_sync_at REAL,
            last_error TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (app_key, name)
        );
        CREATE TABLE audience_members (
            audience_id TEXT NOT NULL REFERENCES audiences(id) ON DELETE CASCADE,
            hash TEXT NOT NULL,
            sent INTEGER NOT NULL DEFAULT 0,
            seen_run INTEGER NOT NULL,
            PRIMARY KEY (audience_id, hash)
        ) WITHOUT ROWID
        """,
    )
