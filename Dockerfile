# calltrail's image for the team deployment (docker-compose.yml): Airflow 3, dbt and Great
# Expectations exactly as locked in uv.lock, the DAGs, the package and the dbt project with its
# manifest. One image for every component; the compose file picks the command.
#
#   docker compose build
#
# No HEALTHCHECK here: each service's health command differs (api-server, scheduler, worker ...),
# so docker-compose.yml defines them.
FROM python:3.11.14-slim-bookworm

# Keep equal to UV_VERSION in the Makefile (tests/test_dockerfile.py checks it).
ARG UV_VERSION=0.13.9
ARG CALLTRAIL_UID=50000

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/calltrail/.venv \
    PATH=/opt/calltrail/.venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/calltrail/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/calltrail/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    CALLTRAIL_DATA_DIR=/var/lib/calltrail \
    CALLTRAIL_LANDING_DIR=/var/lib/calltrail/landing \
    CALLTRAIL_LAKE_DIR=/var/lib/calltrail/lake \
    CALLTRAIL_WAREHOUSE=/var/lib/calltrail/warehouse/calltrail.duckdb \
    CALLTRAIL_DBT_DOCS_DIR=/var/lib/calltrail/docs/dbt \
    CALLTRAIL_DATA_DOCS_DIR=/var/lib/calltrail/docs/gx \
    CALLTRAIL_REPORT_DIR=/var/lib/calltrail/docs/report

# Java 17 from Debian for the spark target (pyspark starts Spark in the task's process; the
# session method, docs/deploying.md).
RUN apt-get update \
    && apt-get install -y --no-install-recommends "openjdk-17-jre-headless=17.0.*" \
    && rm -rf /var/lib/apt/lists/*

# uv from the package index, pinned; a system user; the mount points of the named volumes, owned by
# that user (Docker copies a mount point's ownership into a volume the first time it is mounted).
RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && groupadd --system --gid "${CALLTRAIL_UID}" calltrail \
    && useradd --system --uid "${CALLTRAIL_UID}" --gid calltrail --home-dir /opt/airflow --no-create-home \
        --shell /usr/sbin/nologin calltrail \
    && mkdir -p /opt/airflow/logs /opt/airflow/auth \
        /var/lib/calltrail/landing /var/lib/calltrail/lake /var/lib/calltrail/warehouse /var/lib/calltrail/docs \
    && chown -R calltrail:calltrail /opt/airflow /var/lib/calltrail

WORKDIR /opt/calltrail

# Dependencies first (their layer is reused while uv.lock is unchanged), exactly as locked.
COPY pyproject.toml uv.lock README.md LICENSE ./
RUN uv sync --frozen --no-dev --no-install-project --no-cache

# The project. Installed editable (uv's default): calltrail.settings finds dbt_project/ beside
# plugins/, so the package must run from this folder, not from a copy in site-packages.
COPY plugins/ plugins/
COPY dags/ dags/
COPY --chown=calltrail:calltrail dbt_project/ dbt_project/
RUN uv sync --frozen --no-dev --no-cache

USER ${CALLTRAIL_UID}:${CALLTRAIL_UID}

# The manifest the transformation DAG's dbt task group is rendered from:
# `dbt parse` with calltrail's vars, as `calltrail setup` does. It needs no database.
RUN python -c "from calltrail import settings; from calltrail.transform.dbt import parse; parse(settings.load())" \
    && test -s dbt_project/target/manifest.json

CMD ["airflow", "version"]
