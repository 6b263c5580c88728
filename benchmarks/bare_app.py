"""The yardstick of `benchmarks.ingest`: a bare Starlette JSON route, nothing else.

    python -m uvicorn benchmarks.bare_app:app --loop asyncio --http h11 --no-access-log

Served on plain uvicorn (asyncio + h11) it is the fixed yardstick; on the fastest stack Gangway
ships (uvloop + httptools) it shows what the server alone is worth, so a faster server is not
mistaken for a faster Gangway.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"id": "0123456789abcdef"}, status_code=202)


app = Starlette(routes=[Route("/", hello, methods=["GET", "POST"])])
