from __future__ import annotations

from starlette.testclient import TestClient


def test_healthz_reports_the_database_and_outbox(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "db": "ok", "outbox_pending": 0}


def test_metrics_counts_requests_touches_and_the_writer(client: TestClient) -> None:
    client.get("/c/demo?pid=tiktokweb_int", follow_redirects=False)
    client.get("/nowhere")
    text = client.get("/metrics").text
    assert 'gangway_requests_total{route="click",status="302"} 1' in text
    assert 'gangway_requests_total{route="unmatched",status="404"} 1' in text
    assert 'gangway_touches_total{kind="click"} 1' in text
    assert "gangway_writer_commit_seconds_count" in text
    assert "gangway_writer_queue_depth 0" in text


def test_security_headers_on_every_answer(client: TestClient) -> None:
    for path in ("/lp/demo", "/healthz", "/nowhere"):
        r = client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "default-src 'self'" in r.headers["content-security-policy"]
