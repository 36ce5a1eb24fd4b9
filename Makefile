# The two commands a user needs: `make demo` and `make test`. Both create
# the virtualenv on first use. With DATABASE_URL and REDIS_URL set they use
# those services; without them, SQLite and a Redis the project starts itself.

VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
STAMP := $(VENV)/.installed-requirements

# The first interpreter found that is Python 3.12 or newer.
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)

.PHONY: demo test lint format requirements bench bench-import bench-checkout bench-queues clean

$(STAMP): requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed; set PYTHON=/path/to/python3.12"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	$(MANAGE) migrate --no-input
	@if [ -n "$$ONLINE_RETAIL_CSV" ]; then \
		$(MANAGE) import_online_retail "$$ONLINE_RETAIL_CSV"; \
	else \
		$(MANAGE) load_demo_catalog; \
	fi
	$(MANAGE) seed_demo
	@mkdir -p var && test -s var/flower-password || \
		$(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(12))' > var/flower-password
	@echo ""
	@echo "  shop    http://127.0.0.1:8000/   (accounts above)"
	@echo "  flower  http://127.0.0.1:5555/   user flower, password $$(cat var/flower-password)"
	@echo "  mail    http://127.0.0.1:8000/mail/"
	@echo "  Ctrl-C stops everything."
	@echo ""
	@# honcho stops its processes on INT and TERM, not on HUP (a closed
	@# terminal): pass each of them on as TERM so nothing is left running.
	@PATH="$(CURDIR)/$(BIN):$$PATH" FLOWER_BASIC_AUTH="flower:$$(cat var/flower-password)" \
		$(BIN)/honcho start & pid=$$!; \
	trap 'kill -TERM $$pid 2>/dev/null; wait $$pid' HUP INT TERM; \
	wait $$pid

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

requirements: $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements.in
	{ echo "# Generated from requirements.in by \`make requirements\`; every version pinned."; \
	  $(BIN)/python -m pip freeze | sort -f; } > requirements.txt

bench: bench-import bench-checkout bench-queues

bench-import: $(STAMP)
	@test -n "$$ONLINE_RETAIL_CSV" || { echo "set ONLINE_RETAIL_CSV to the Online Retail file"; exit 1; }
	rm -rf var/bench-import
	@# A fresh SQLite database, and no broker: the import's index updates
	@# are left to the sweep, as in `make demo`.
	env -u DATABASE_URL -u REDIS_URL SHOP_VAR_DIR="$(CURDIR)/var/bench-import" \
		SHOP_EMBEDDED_REDIS_PORT=1 SHOP_LOG_LEVEL=ERROR sh -c '$(MANAGE) migrate -v0 && \
		$(MANAGE) bench_import "$$ONLINE_RETAIL_CSV"'


# Options go through BENCH_CHECKOUT_ARGS, e.g. "--smtp-delay-ms 100".
bench-checkout: $(STAMP)
	$(MANAGE) bench_checkout $(BENCH_CHECKOUT_ARGS)

# Its own Redis (port 16382) and SQLite file under var/bench-queues.
bench-queues: $(STAMP)
	rm -rf var/bench-queues
	env -u DATABASE_URL -u REDIS_URL SHOP_VAR_DIR="$(CURDIR)/var/bench-queues" \
		SHOP_EMBEDDED_REDIS_PORT=16382 SHOP_LOG_LEVEL=WARNING \
		$(MANAGE) bench_queues $(BENCH_QUEUES_ARGS)

clean:
	rm -rf var
