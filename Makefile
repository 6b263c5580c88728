# Two commands for a fresh machine (see README.md):
#   make serve   create the environment, seed the demo, print an admin token, serve on :8000
#   make test    create the environment, make sure Chromium and PostgreSQL's binaries are there,
#                run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= ./data/gangway.db

.PHONY: serve test env env-serve chromium postgresql lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Serving needs only the runtime dependencies; the suite needs the test extra too.
env-serve: $(BIN)/python
	$(BIN)/pip install --quiet -e .

env: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

serve: env-serve
	$(BIN)/python -m app demo --db $(DB)
	$(BIN)/python -m app token create --db $(DB) --label "make serve"
	@echo "Demo landing page: http://127.0.0.1:8000/lp/demo?pid=tiktokweb_int&c=summer&ttclid=E.C.P.demo"
	@echo "Console: http://127.0.0.1:8000/admin (first: $(BIN)/python -m app user create --db $(DB) --email you@example.com)"
	$(BIN)/python -m app serve --db $(DB) --host 127.0.0.1 --port 8000

# Debian's Chromium when present (Playwright's own download needs the open internet).
chromium: env
	@if [ -x /usr/bin/chromium ] || [ -n "$$GANGWAY_CHROMIUM" ]; then \
	  echo "Chromium: $${GANGWAY_CHROMIUM:-/usr/bin/chromium}"; \
	else \
	  $(BIN)/python -m playwright install chromium; \
	fi

# PostgreSQL's server binaries, for the throwaway server the tests start (tests/pg.py); the
# package's own cluster is not started. Debian's package when missing and we may install it.
postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "PostgreSQL: $$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  made=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; \
	    chmod 755 /usr/sbin/policy-rc.d; made=1; \
	  fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; status=$$?; \
	  [ -z "$$made" ] || rm -f /usr/sbin/policy-rc.d; \
	  exit $$status; \
	else \
	  echo "PostgreSQL's server binaries are missing: apt-get install -y postgresql"; exit 1; \
	fi

test: env chromium postgresql
	$(BIN)/python -m pytest -n auto --dist loadfile

lint: env
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: env
	$(BIN)/python -m benchmarks
