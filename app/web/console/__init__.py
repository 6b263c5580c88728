"""The owner's console at /admin (console.md): server-rendered screens over the same service
functions as the JSON owner API. Every route here is HTML for people, so it is left out of the
OpenAPI document (`include_in_schema=False`)."""

from __future__ import annotations

from starlette.routing import Route

from app.web.console import audiences, auth, cost_screen, screens, tiktok_ads

GET = ["GET", "HEAD"]
POST = ["POST"]
FORM = ["GET", "HEAD", "POST"]


def routes() -> list[Route]:
    table = [
        ("/admin", screens.dashboard, GET),
        ("/admin/login", auth.login, FORM),
        ("/admin/logout", auth.logout, POST),
        ("/admin/apps", screens.apps, FORM),
        ("/admin/apps/{app_key}", screens.app_detail, FORM),
        ("/admin/apps/{app_key}/rotate", screens.rotate_sdk_key, POST),
        ("/admin/apps/{app_key}/delete", screens.delete_app, POST),
        ("/admin/apps/{app_key}/tiktok", screens.integration, FORM),
        ("/admin/tiktok-ads", tiktok_ads.overview, GET),
        ("/admin/apps/{app_key}/tiktok-ads", tiktok_ads.connection, FORM),
        ("/admin/apps/{app_key}/tiktok-ads/connect", tiktok_ads.connect, POST),
        ("/admin/apps/{app_key}/tiktok-ads/disconnect", tiktok_ads.disconnect, POST),
        ("/admin/apps/{app_key}/tiktok-ads/pull", tiktok_ads.pull_now, POST),
        ("/admin/pages", screens.pages, FORM),
        ("/admin/pages/{slug}", screens.page_detail, FORM),
        ("/admin/pages/{slug}/links", screens.link_builder, GET),
        ("/admin/doctor", screens.link_doctor, GET),
        ("/admin/installs/{install_id}", screens.install_receipt, GET),
        ("/admin/postbacks", screens.postbacks, GET),
        ("/admin/postbacks/retry", screens.retry_failed, POST),
        ("/admin/postbacks/{postback_id}", screens.postback_detail, GET),
        ("/admin/postbacks/{postback_id}/retry", screens.retry_postback, POST),
        ("/admin/cost", cost_screen.cost, GET),
        ("/admin/cost/upload", cost_screen.cost_upload, POST),
        ("/admin/cost/rates", cost_screen.rates_upload, POST),
        ("/admin/audiences", audiences.audiences, GET),
        ("/admin/users", screens.users, FORM),
        ("/admin/tokens/{token_id}/revoke", screens.revoke_token, POST),
        # Last: any other path under /admin
        ("/admin/{path:path}", screens.not_found, GET),
    ]
    return [
        Route(path, endpoint, methods=methods, include_in_schema=False)
        for path, endpoint, methods in table
    ]
