# `make test` and `make demo` work on a fresh machine with only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
export DEBUG ?= 1

.PHONY: setup migrate test check lint demo serve run worker beat local-lm bench graphql-schema clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

setup: $(STAMP)

migrate: setup
	$(BIN)/python manage.py migrate --noinput

lint: setup
	$(BIN)/ruff check .

check: setup lint
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

test: migrate check
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

demo: migrate
	$(BIN)/python manage.py demo

serve: setup
	$(BIN)/python manage.py serve $(SERVE_ARGS)

run: migrate
	$(BIN)/python manage.py runserver

worker: setup
	$(BIN)/celery -A dspex_site worker --loglevel=INFO

beat: setup
	$(BIN)/celery -A dspex_site beat --loglevel=INFO --scheduler workers.scheduler:DatabaseScheduler

local-lm: setup
	$(BIN)/python manage.py run_local_lm --port 8765

bench: setup
	$(BIN)/python -m bench

# Rewrite schema.graphql after changing the GraphQL types (tests fail while it is out of date).
graphql-schema: setup
	$(BIN)/python manage.py export_schema cognitive.api.graphql.schema --path schema.graphql

clean:
	rm -rf $(VENV) var
