# Two commands: `make run` (the portal on its embedded default, with demo data) and
# `make test` (the whole test suite). Both set up the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test lint schema bench clean

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

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

schema: install
	DJANGO_DEBUG=true $(PY) manage.py spectacular --validate --fail-on-warn --file var/schema.yml

clean:
	rm -rf $(VENV) var
