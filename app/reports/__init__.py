"""Reporting, pure: rollup keys and increments, the overview arithmetic, raw CSV rows, cost
files, retention and erase rules (`reporting.md`). Nothing here imports Starlette, httpx or the
store; the handlers, the jobs and the store's writes call into it."""
