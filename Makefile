# servicedesk — `make demo` runs it, `make test` checks it. Needs only Python 3.11.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test lint format bench migrate clean run-prod

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "servicedesk needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The demo's lawyers and supervisor log in without a second factor (REQUIRE_2FA=1 asks
# for one, as production does).
demo: export REQUIRE_2FA ?= 0
demo: $(STAMP)
	@DEBUG=1 $(PY) manage.py migrate --noinput
	@DEBUG=1 $(PY) manage.py seed_demo
	@echo
	@echo "  servicedesk demo on http://$(HOST):$(PORT)/"
	@echo "  The desk: http://$(HOST):$(PORT)/ (log in as agent, lawyer or supervisor)."
	@echo "  Log in to the admin at http://$(HOST):$(PORT)/admin/ as admin / admin or supervisor / supervisor."
	@echo "  Users: agent, agent2, lawyer, lawyer2, supervisor, admin — the password is the user name."
	@echo "  API docs: http://$(HOST):$(PORT)/api/docs/  (API tokens are printed above)."
	@echo "  A simulated stream of customer posts is arriving on the channel 'sim'. Ctrl-C stops everything."
	@echo
	@DEBUG=1 $(PY) manage.py simulate_mentions --interval 8 --beat > demo-stream.log 2>&1 & \
	  stream=$$!; trap 'kill $$stream 2>/dev/null' EXIT INT TERM; \
	  DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

test: $(STAMP) lint
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The benches also need the `bench` extra (locust, for bench/load.py): their own stamp, so
# that `make test` never installs it.
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

# The webhook bench, by default, paces the deliveries at the goal's rate (500/s) for 3 rounds;
# WEBHOOK_BENCH_ARGS="--rate 0" sends as fast as the stack answers instead.
WEBHOOK_BENCH_ARGS ?= --rate 500 --rounds 3

# bench/scale.py builds its 10-million-mention database once (5-10 minutes) and keeps it.
bench: $(BENCH_STAMP)
	$(PY) bench/ingest.py $(BENCH_ARGS)
	$(PY) bench/webhooks.py $(WEBHOOK_BENCH_ARGS)
	$(PY) bench/pages.py $(PAGES_BENCH_ARGS)
	$(PY) bench/screening.py $(SCREENING_BENCH_ARGS)
	$(PY) bench/reports.py $(REPORTS_BENCH_ARGS)
	$(PY) bench/load.py $(LOAD_BENCH_ARGS)
	$(PY) bench/scale.py $(SCALE_BENCH_ARGS)

# Production on this machine: PostgreSQL + Redis, gunicorn, a Celery worker and beat (the
# Procfile's three processes). Needs SECRET_KEY; the URLs default to the local services.
PROD_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/servicedesk
PROD_REDIS_URL ?= redis://127.0.0.1:6379/0
run-prod: $(STAMP)
	@test -n "$$SECRET_KEY" || { echo "run-prod needs SECRET_KEY (50+ random characters)"; exit 1; }
	@export DATABASE_URL=$${DATABASE_URL:-$(PROD_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(PROD_REDIS_URL)} \
	  DEBUG=0 PATH=$(CURDIR)/$(VENV)/bin:$$PATH; \
	  python manage.py migrate --noinput && python manage.py collectstatic --noinput -v0 && \
	  python manage.py check --deploy --fail-level WARNING && \
	  { gunicorn -c servicedesk/gunicorn_conf.py servicedesk.wsgi & web=$$!; \
	    celery -A servicedesk worker --loglevel INFO --concurrency 2 & worker=$$!; \
	    celery -A servicedesk beat --loglevel INFO --schedule /tmp/servicedesk-beat-schedule & beat=$$!; \
	    trap 'kill $$web $$worker $$beat 2>/dev/null; wait' EXIT INT TERM; \
	    echo "servicedesk: web $$web, worker $$worker, beat $$beat (Ctrl-C stops all three)"; \
	    wait -n; }

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

clean:
	rm -rf $(VENV) servicedesk.sqlite3* .hypothesis
