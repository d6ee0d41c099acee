# Two commands: `make run` (the portal on its embedded default, with demo data) and
# `make test` (the whole test suite). Both set up the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test fuzz lint schema openapi-lint messages screenshots bench bench-usage bench-decisions clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	PY=$(PY) deploy/embedded.sh

test: install
	$(PY) -m tests.run $(ARGS)

# schemathesis against a live portal (gunicorn and a worker) on PostgreSQL, as an operator and
# as an applicant, each on a database of its own that the run makes and drops.
fuzz: install
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_DATABASE_URL)} $(PY) -m tests.fuzz

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

# Compile the message catalogs (.po → .mo, committed) in pure Python: no gettext needed. To
# collect new strings first (needs GNU gettext): cd <app> && ../manage.py makemessages -l nb
messages: install
	$(PY) -m portal.translations

# The browser tests, writing the README's screenshots (docs/screenshots/) instead of var/.
screenshots: install
	PORTAL_SCREENSHOT_DIR=docs/screenshots $(PY) -m tests.run tests/browser -q

schema: install
	DJANGO_DEBUG=true $(PY) manage.py spectacular --validate --fail-on-warn --file var/schema.yml

# Spectral's OpenAPI ruleset on the schema (pinned in tools/openapi-lint); needs Node.js and npm.
OPENAPI_LINT := tools/openapi-lint
openapi-lint: schema
	npm ci --prefix $(OPENAPI_LINT) --no-audit --no-fund --ignore-scripts --loglevel=error
	$(OPENAPI_LINT)/node_modules/.bin/spectral lint --ruleset $(OPENAPI_LINT)/.spectral.yaml \
		--fail-severity error var/schema.yml

# Benchmarks print figures as ratios against a floor measured in the same run, as one table
# (also written to var/bench.md); they need PostgreSQL (and Redis for the decisions) and make
# a database of their own. `make bench ONLY=usage,lists` runs some; `ARGS=--quick` smaller sets.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal

bench: install
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_DATABASE_URL)} ONLY=$(ONLY) $(PY) -m tests.benchmarks $(ARGS)

bench-usage: install
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_DATABASE_URL)} $(PY) -m tests.benchmarks --only usage

bench-decisions: install
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_DATABASE_URL)} $(PY) -m tests.benchmarks.decisions

clean:
	rm -rf $(VENV) var
