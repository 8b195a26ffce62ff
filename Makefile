# The two commands a newcomer needs: `make demo` and `make test`.
# Both install what is missing (uv, the locked Python packages, Kafka's jars,
# PostgreSQL, SeaweedFS) and start the engines themselves.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen

.PHONY: demo test unit lint up down status bootstrap clean

# Compiled to bytecode here, once: a service that starts where Python may not
# write bytecode (PYTHONDONTWRITEBYTECODE, a read-only or fresh container)
# compiles every module it imports, and a promoter's restart waits for that.
bootstrap:  ## the locked Python environment (.venv), compiled; uv itself if missing
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv
	@$(UV) sync --frozen --all-packages --quiet --compile-bytecode
	@$(RUN) python -m compileall -q shared services >/dev/null

demo: bootstrap  ## the stack, then a scripted scenario that prints what happens
	@$(RUN) modelog up
	@$(RUN) modelog demo

# Two pytest-xdist workers, each with a stack of its own (tests/conftest.py),
# a test file per worker at a time: most tests wait on engines rather than
# compute, so two share two cores well.
test: bootstrap  ## every test; starts its own engines and services
	@$(RUN) pytest --numprocesses 2 --dist loadfile

lint: bootstrap  ## ruff (lint + import order) and mypy (strict on the contract): both stay at zero
	@$(RUN) ruff check .
	@$(RUN) mypy

unit: bootstrap  ## the pure tests only: no engines needed
	@$(RUN) pytest tests/unit

up: bootstrap
	@$(RUN) modelog up

down: bootstrap
	@$(RUN) modelog down

status: bootstrap
	@$(RUN) modelog status

clean: down  ## stop everything and delete this checkout's data (.modelog/)
	rm -rf .modelog
