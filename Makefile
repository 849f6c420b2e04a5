# servicedesk — `make demo` runs it, `make test` checks it. Needs only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test lint format bench migrate clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "servicedesk needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@DEBUG=1 $(PY) manage.py migrate --noinput
	@DEBUG=1 $(PY) manage.py seed_demo
	@echo
	@echo "  servicedesk demo on http://$(HOST):$(PORT)/"
	@echo "  Log in to the admin at http://$(HOST):$(PORT)/admin/ as admin / admin or supervisor / supervisor."
	@echo "  Users: agent, agent2, lawyer, lawyer2, supervisor, admin — the password is the user name."
	@echo "  API docs: http://$(HOST):$(PORT)/api/docs/  (API tokens are printed above)."
	@echo "  A simulated stream of customer posts is arriving on the channel 'sim'. Ctrl-C stops everything."
	@echo
	@DEBUG=1 $(PY) manage.py simulate_mentions --interval 8 > demo-stream.log 2>&1 & \
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

bench: $(STAMP)
	$(PY) bench/ingest.py $(BENCH_ARGS)
	$(PY) bench/webhooks.py $(WEBHOOK_BENCH_ARGS)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput

clean:
	rm -rf $(VENV) servicedesk.sqlite3* .hypothesis
