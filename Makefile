# Every command a developer runs; CI runs `make test` through .ci/run.
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install up test lint typecheck unit integration fmt clean

install:
	@bash scripts/bootstrap.sh

## The whole local fleet in the foreground (Ctrl-C stops it): Redis, the CPU speech
## server, two gateways under gunicorn, NGINX on 127.0.0.1:8080, Prometheus on 127.0.0.1:9090.
up: install
	@$(PY) -m deploy.local.fleet

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy services/gateway/gateway services/asr-cpu/asr_cpu clients/python/speech_client deploy bench

unit: install
	$(PY) -m pytest tests/unit -q

integration: install
	$(PY) -m pytest tests/integration -q

## Lint, type-check and the whole test suite (unit and integration).
test: install lint typecheck
	$(PY) -m pytest -q

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## The gateway's CPU, memory and latency per stream against a bare relay and the speech
## server called directly, at fractions of the relay's knee on this machine, and the
## gateway at twice its own knee (about 15-20 minutes; BENCH_ARGS=--quick: about 6):
## bench/README.md.
BENCH_ARGS ?=
.PHONY: bench
bench: install
	$(PY) -m bench $(BENCH_ARGS)

## How many sessions one Redis core carries: the gateway's Lua scripts and call mix
## against a local Redis pinned to one core, then per Cluster shard (about 4 minutes):
## docs/capacity.md.
.PHONY: bench-redis
bench-redis: install
	$(PY) -m bench.redis_capacity

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache

## The images, the Helm chart, Compose and Skaffold, validated offline (part of `make test`).
.PHONY: chart
chart: install
	$(PY) -m pytest tests/chart -q

## pip-audit against the pinned set (constraints.txt); accepted advisories, each with a
## reason and an end date, in deploy/pip-audit-ignore.txt. Fails when the vulnerability
## service cannot be reached: an audit that did not run never passes.
.PHONY: audit
audit: install
	$(PY) -m deploy.audit
