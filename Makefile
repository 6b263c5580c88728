# Two commands for a fresh machine (see README.md):
#   make serve   create the environment, seed the demo, print an admin token, serve on :8000
#   make test    create the environment, make sure Chromium is there, run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DB ?= ./data/gangway.db

.PHONY: serve test env env-serve chromium lint bench

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

test: env chromium
	$(BIN)/python -m pytest -n auto --dist loadfile

lint: env
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: env
	$(BIN)/python -m benchmarks
