"""Operations: `/healthz` for load balancers, `/metrics` for Prometheus (http-api.md 4)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from app.services import services


async def healthz(request: Request) -> Response:
    svc = services(request)
    try:
        pending = await svc.store.outbox.outbox_pending()
    except Exception as exc:  # the point of a health check is to say so, not to 500
        return JSONResponse(
            {"status": "error", "db": f"error: {type(exc).__name__}"}, status_code=503
        )
    return JSONResponse({"status": "ok", "db": "ok", "outbox_pending": pending})


def _labels(**labels: object) -> str:
    inner = ",".join(
        f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels.items()
    )
    return "{" + inner + "}"


async def metrics(request: Request) -> Response:
    svc = services(request)
    c = svc.counters
    stats = svc.store.stats()
    lines = [
        "# HELP gangway_requests_total HTTP requests by route and status.",
        "# TYPE gangway_requests_total counter",
        *(
            f"gangway_requests_total{_labels(route=route, status=status)} {n}"
            for (route, status), n in sorted(c.requests.items())
        ),
        "# HELP gangway_client_disconnects_total Requests whose client left mid-body.",
        "# TYPE gangway_client_disconnects_total counter",
        *(
            f"gangway_client_disconnects_total{_labels(route=route)} {n}"
            for route, n in sorted(c.disconnects.items())
        ),
        "# HELP gangway_touches_total Touches recorded.",
        "# TYPE gangway_touches_total counter",
        *(f"gangway_touches_total{_labels(kind=k)} {n}" for k, n in sorted(c.touches.items())),
        "# HELP gangway_installs_total Installs recorded by status.",
        "# TYPE gangway_installs_total counter",
        *(f"gangway_installs_total{_labels(status=k)} {n}" for k, n in sorted(c.installs.items())),
        "# HELP gangway_postbacks Postbacks in the outbox by state.",
        "# TYPE gangway_postbacks gauge",
        *(
            f"gangway_postbacks{_labels(state=k)} {n}"
            for k, n in sorted((await svc.store.outbox.postback_states()).items())
        ),
        "# HELP gangway_writer_queue_depth Writes waiting for the writer.",
        "# TYPE gangway_writer_queue_depth gauge",
        f"gangway_writer_queue_depth {stats.queue_depth}",
        "# HELP gangway_writer_commit_seconds Group commit latency.",
        "# TYPE gangway_writer_commit_seconds histogram",
        *(
            f"gangway_writer_commit_seconds_bucket{_labels(le=bound)} {n}"
            for bound, n in stats.commit_buckets.items()
        ),
        f'gangway_writer_commit_seconds_bucket{{le="+Inf"}} {stats.batches}',
        f"gangway_writer_commit_seconds_sum {stats.commit_seconds_total:.6f}",
        f"gangway_writer_commit_seconds_count {stats.batches}",
        "# HELP gangway_writer_writes_total Writes committed through the writer.",
        "# TYPE gangway_writer_writes_total counter",
        f"gangway_writer_writes_total {stats.writes}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
