# calltrail: the two commands a newcomer needs are `make run` and `make test`.
# Both build the virtual environment from uv.lock first (installing uv from the package index
# into .tools/ when it is not on PATH). Nothing is downloaded from anywhere but the package index.

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_SYSTEM_CERTS := 1
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(CURDIR)/.tools/bin/uv
endif

.PHONY: run test demo lint summary report clean help bench bench-demo airflow airflow-stop referrer-hosts

help:
	@echo "make run      ingest the demo data (or Salesforce + landing files) end to end and print a summary"
	@echo "              (FULL_REFRESH=1: rebuild every incremental model from the whole lake)"
	@echo "make test     lint and run the test suite"
	@echo "make demo     (re)write the demo data into the landing folder"
	@echo "make summary  print what is in the lake and the marts (MODEL=u_shaped: revenue under another attribution model)"
	@echo "make report   write the report page (charts of the published marts) again: data/report/index.html"
	@echo "make airflow  start a local Airflow (api-server, scheduler, dag-processor, triggerer) that runs the DAGs on schedule"
	@echo "make airflow-stop  stop every process make airflow started"
	@echo "make bench   the benchmark (N visitors, default about 10 M page views; REPEAT build/floor runs, default 3)"
	@echo "make bench-demo  only the benchmark's demo part: make run from clean data and the orchestration ratio"
	@echo "make referrer-hosts  regenerate the seed referrer_hosts.csv from the pinned lists in vendor/"
	@echo "make clean    remove data/ (landing, lake, warehouse, Airflow home) and the virtual environment"

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found: installing uv $(UV_VERSION) from the package index into .tools/"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# --compile-bytecode: every module is compiled once, at install (as pip does), not again in every
# process: with PYTHONDONTWRITEBYTECODE set, importing dbt alone took 5 s instead of 3 s per command.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-groups --compile-bytecode
	@touch $@

referrer-hosts: $(VENV)/.synced
	$(VENV)/bin/python scripts/build_referrer_hosts.py

# FULL_REFRESH=1: every incremental model rebuilt from the whole lake (docs/incremental.md)
run: $(VENV)/.synced
	$(VENV)/bin/calltrail run $(if $(FULL_REFRESH),--full-refresh)

airflow: $(VENV)/.synced
	$(VENV)/bin/calltrail airflow start

airflow-stop: $(VENV)/.synced
	$(VENV)/bin/calltrail airflow stop

demo: $(VENV)/.synced
	$(VENV)/bin/calltrail demo

# MODEL=u_shaped: revenue by channel under another attribution model (default CALLTRAIL_SUMMARY_MODEL)
summary: $(VENV)/.synced
	$(VENV)/bin/calltrail summary $(if $(MODEL),--model $(MODEL))

report: $(VENV)/.synced
	$(VENV)/bin/calltrail report

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check plugins dags tests

test: lint
	scripts/system-deps.sh
	$(PY) -m pytest -q

clean:
	rm -rf data $(VENV) .tools

# Benchmark (not part of the tests): N visitors, default about ten million page views and a million
# Tasks (bench.py generates them with a third of the visitors calling). The build and the floor run
# REPEAT times each, alternately; the medians are reported.
N ?= 2300000
REPEAT ?= 3
bench: $(VENV)/.synced
	$(PY) bench/bench.py --visitors $(N) --repeat $(REPEAT)

# Only the benchmark's demo part: `make run` from clean data (REPEAT times), the transformation
# DAG's dbt tasks against a plain dbt build of the same nodes (docs/benchmark.md).
bench-demo: $(VENV)/.synced
	$(PY) bench/bench.py --demo-only --repeat $(REPEAT)
