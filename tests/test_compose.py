"""The team deployment's docker-compose.yml, checked without a Docker engine (none runs in CI).

It is valid against the Compose Specification's JSON schema (vendored), and it has the shape the
deployment needs: the Airflow components on PostgreSQL metadata with CeleryExecutor and Redis, each
with a health check, the same secrets for every component and all of them from .env, and calltrail's
data on named volumes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from calltrail.ops.airflow_cli import QUIETED_WARNINGS
from calltrail.settings import WAREHOUSE_POOL

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "vendor" / "compose-spec.json"  # vendored, see tests/vendor/README.md
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)  # PyYAML resolves the anchors and `<<` merge keys as compose does
SERVICES = COMPOSE["services"]

AIRFLOW_SERVICES = ("airflow-init", "api-server", "scheduler", "dag-processor", "triggerer", "worker")
LONG_RUNNING = ("postgres", "redis", "api-server", "scheduler", "dag-processor", "triggerer", "worker")
SHARED_SECRETS = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__CORE__FERNET_KEY")
# Secrets that may be absent: then the connection is simply not configured.
OPTIONAL_SECRETS = {"AIRFLOW_CONN_SALESFORCE_DEFAULT", "AIRFLOW_CONN_SLACK_ALERTS", "AIRFLOW_CONN_SMTP_ALERTS",
                    "CALLTRAIL_PG_PASSWORD", "CALLTRAIL_SPARK_PASSWORD"}  # the last two: only some servers want one
SECRET_NAME = re.compile(r"^(?!.*_FILE$).*(PASSWORD|SECRET|FERNET|_KEY$)|^AIRFLOW_CONN_")  # a *_FILE is a path
# `${VAR...}` that compose substitutes; `$${VAR}` is an escaped `$` left to the container's shell.
COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$\{(\w+)(?::?([-?])([^}]*))?\}")
REQUIRED_REF = re.compile(r"^\$\{(\w+):\?[^}]+\}$")
OPTIONAL_REF = re.compile(r"^\$\{(\w+):-\}$")


def env_of(service: str) -> dict[str, str]:
    return SERVICES[service].get("environment", {})


def strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def dotenv_example() -> dict[str, str]:
    entries = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=value"
            entries[key.strip()] = value.strip()
    return entries


def compose_validator() -> jsonschema.Draft7Validator:
    """The specification's schema is draft-07, which its ``$schema`` names without the ``#`` that
    jsonschema looks the draft up by: named here, not guessed (jsonschema would take the latest)."""
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"].rstrip("#") == "https://json-schema.org/draft-07/schema", schema["$schema"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_compose_file_matches_the_compose_specification():
    compose_validator().validate(COMPOSE)


def test_a_compose_file_with_a_mistake_fails_the_schema():
    # The validation above can fail: a misspelt key and a wrong type are both rejected.
    validator = compose_validator()
    for broken in ({"services": {"x": {"image": "a", "helthcheck": {}}}},
                   {"services": {"x": {"image": "a", "depends_on": {"y": {"condition": "service_happy"}}}}}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(broken)


def test_every_component_is_a_service():
    expected = {"postgres", "redis", *AIRFLOW_SERVICES}
    assert expected <= set(SERVICES), f"missing services: {sorted(expected - set(SERVICES))}"


def test_every_long_running_service_has_a_health_check():
    for name in LONG_RUNNING:
        check = SERVICES[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


@pytest.mark.parametrize(("service", "expected"), [
    ("api-server", "http://localhost:8080/api/v2/monitor/health"),
    ("scheduler", "jobs check --job-type SchedulerJob --local"),
    ("dag-processor", "jobs check --job-type DagProcessorJob --local"),
    ("triggerer", "jobs check --job-type TriggererJob --local"),
    ("worker", "celery --app airflow.providers.celery.executors.celery_executor_utils.app inspect ping"),
    ("postgres", "pg_isready"),
    ("redis", "redis-cli ping"),
])
def test_health_checks_use_the_components_own_checks(service, expected):
    test = SERVICES[service]["healthcheck"]["test"]
    command = " ".join(test[1:])
    assert expected in command, f"{service}: expected {expected!r} in its health check, saw {command!r}"


def test_the_celery_app_of_the_worker_health_check_imports_with_the_locked_celery():
    # celery 5.7 broke this import (the provider needs celery.backends.database.retry); uv.lock
    # must hold a celery the provider works with, or no worker and no scheduler can start.
    # The app's name is `[celery] celery_app_name`, whose default depends on whether provider
    # configuration was loaded earlier in this process (the core fallback or the provider's own):
    # assert what holds either way, never one of the two defaults.
    from airflow.providers.celery.executors import celery_executor_utils
    from celery import Celery

    app = celery_executor_utils.app
    assert isinstance(app, Celery), f"expected a Celery app, saw {app!r}"
    assert app.main and app.main.endswith("celery_executor"), f"unexpected Celery app name {app.main!r}"


def test_airflow_services_start_after_their_dependencies_are_healthy():
    for name in AIRFLOW_SERVICES:
        deps = SERVICES[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["redis"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    assert SERVICES["worker"]["depends_on"]["api-server"]["condition"] == "service_healthy"


def test_celery_executor_on_postgres_and_redis_and_the_execution_api():
    for name in AIRFLOW_SERVICES:
        env = env_of(name)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@postgres:5432/airflow"), name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0", name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://airflow:"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False", name
        assert env["PYTHONWARNINGS"] == ",".join(QUIETED_WARNINGS), name  # as make run and make airflow
    assert "api-server" in SERVICES


def test_every_airflow_service_shares_the_anchor_and_the_same_secrets_from_env():
    assert re.search(r"^x-airflow-common: &airflow-common$", COMPOSE_TEXT, re.M)
    assert re.search(r"^  environment: &airflow-common-env$", COMPOSE_TEXT, re.M)
    anchor_env = COMPOSE["x-airflow-common"]["environment"]
    for name in AIRFLOW_SERVICES:
        block = COMPOSE_TEXT.split(f"\n  {name}:\n", 1)[1].split("\n\n", 1)[0]
        assert "<<: *airflow-common\n" in block, f"{name} does not merge x-airflow-common"
        for key in SHARED_SECRETS:
            value = env_of(name)[key]
            assert value == anchor_env[key], f"{name}: {key} differs from x-airflow-common"
            match = REQUIRED_REF.match(value)
            assert match and match.group(1) == key, f"{name}: {key} must be ${{{key}:?...}}, is {value!r}"


def test_no_literal_secret_anywhere_in_the_file():
    for name, service in SERVICES.items():
        for key, value in service.get("environment", {}).items():
            if not SECRET_NAME.search(key):
                continue
            if key in OPTIONAL_SECRETS:
                assert OPTIONAL_REF.match(value) or REQUIRED_REF.match(value), f"{name}: {key}={value!r}"
            else:
                assert REQUIRED_REF.match(value), f"{name}: {key} must come from .env as ${{VAR:?...}}, is {value!r}"
    for text in strings(COMPOSE):
        for password in re.findall(r"://[^/:@\s]+:([^@\s]+)@", text):
            assert REQUIRED_REF.match(password), f"a URL carries the literal password {password!r}: {text}"
    for var, op, default in COMPOSE_VARIABLE.findall(COMPOSE_TEXT):
        if SECRET_NAME.search(var):
            assert not (op == "-" and default), f"${{{var}}} has a default value {default!r}: no default secrets"


def test_auth_is_simple_auth_manager_with_the_admin_from_env():
    env = env_of("api-server")
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("simple_auth_manager.SimpleAuthManager")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "${AIRFLOW_ADMIN_USERNAME:-admin}:admin"
    passwords_dir = str(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).parent)
    for name in ("airflow-init", "api-server"):
        mounts = {m.split(":")[1]: m.split(":")[0] for m in SERVICES[name]["volumes"]}
        assert mounts.get(passwords_dir) == "airflow-auth", f"{name} does not mount airflow-auth at {passwords_dir}"
    init_env = env_of("airflow-init")
    assert REQUIRED_REF.match(init_env["AIRFLOW_ADMIN_PASSWORD"])
    assert "AIRFLOW_ADMIN_PASSWORD" not in env, "only airflow-init needs the admin password"


def test_init_migrates_creates_the_one_slot_pool_and_writes_the_password_from_stdin():
    init = SERVICES["airflow-init"]
    script = init["command"][-1]
    assert "airflow db migrate" in script
    assert re.search(rf"airflow pools set {WAREHOUSE_POOL} 1 ", script)
    assert "| python -m calltrail.ops.deploy" in script and "--user" in script
    # Shell variables are escaped ($$) so compose leaves them to the container, which has them.
    for var in re.findall(r"\$\$\{(\w+)\}", COMPOSE_TEXT.split("\n  airflow-init:\n", 1)[1].split("\n\n", 1)[0]):
        assert var in init["environment"], f"airflow-init's script uses ${var}, which its environment lacks"
    assert init["restart"] == "no"


def test_the_api_server_is_published_on_loopback_by_default():
    (port,) = SERVICES["api-server"]["ports"]
    assert port.startswith("${CALLTRAIL_AIRFLOW_BIND:-127.0.0.1}:"), port
    for name, service in SERVICES.items():
        if name != "api-server":
            assert "ports" not in service, f"{name} publishes a port"


def test_warehouse_lake_and_landing_are_on_named_volumes_mounted_where_the_settings_point():
    env = env_of("worker")
    named = set(COMPOSE["volumes"])
    mounts = {m.split(":")[1]: m.split(":")[0] for m in SERVICES["worker"]["volumes"]}
    for path in (str(Path(env["CALLTRAIL_WAREHOUSE"]).parent), env["CALLTRAIL_LAKE_DIR"], env["CALLTRAIL_LANDING_DIR"]):
        source = mounts.get(path)
        assert source in named, f"worker: {path} should be a named volume, is mounted from {source!r}"
    assert mounts[env["CALLTRAIL_LAKE_DIR"]] == "calltrail-lake"
    assert mounts[str(Path(env["CALLTRAIL_WAREHOUSE"]).parent)] == "calltrail-warehouse"
    for name in AIRFLOW_SERVICES:
        assert env_of(name)["CALLTRAIL_WAREHOUSE"] == env["CALLTRAIL_WAREHOUSE"], name


def test_env_example_lists_every_variable_the_compose_file_uses():
    used = {var for var, _, _ in COMPOSE_VARIABLE.findall(COMPOSE_TEXT)}
    listed = dotenv_example()
    assert used, "found no ${VAR} in docker-compose.yml"
    assert not used - set(listed), f".env.example lacks {sorted(used - set(listed))}"
    assert not set(listed) - used, f".env.example lists variables compose never uses: {sorted(set(listed) - used)}"


def test_env_example_ships_no_secret_value():
    for key, value in dotenv_example().items():
        if SECRET_NAME.search(key):
            assert value == "", f".env.example gives {key} a value; leave secrets empty"


def test_env_is_ignored_by_git_and_docker():
    assert "/.env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_the_spark_profile_runs_the_locked_spark_version_on_calltrails_volumes():
    """`docker compose --profile spark`: a standalone master and worker of the Spark version pyspark
    has in uv.lock (a driver and executors of different versions do not talk), off by default, and
    the worker's executors see the lake and the warehouse where the Airflow worker's driver does."""
    locked = re.search(r'\nname = "pyspark"\nversion = "([^"]+)"', (ROOT / "uv.lock").read_text()).group(1)
    spark = {name: s for name, s in SERVICES.items() if "spark" in s.get("profiles", [])}
    assert set(spark) == {"spark-master", "spark-worker", "spark-thrift"}
    for name, service in spark.items():
        assert service["image"] == f"apache/spark:{locked}", name
        assert service["healthcheck"]["test"], name
    driver = {m.split(":")[0]: m.split(":")[1] for m in SERVICES["worker"]["volumes"]}
    executor = {m.split(":")[0]: m.split(":")[1] for m in SERVICES["spark-worker"]["volumes"]}
    assert executor == {v: driver[v] for v in ("calltrail-lake", "calltrail-warehouse")}
    assert env_of("worker")["CALLTRAIL_SPARK_WAREHOUSE_DIR"].startswith(driver["calltrail-warehouse"] + "/")
    assert "spark://spark-master:7077" in SERVICES["spark-worker"]["command"]
    # the Thrift Server (CALLTRAIL_SPARK_METHOD=thrift) is a driver on the same cluster: it reads the
    # lake where the worker writes it, keeps its tables and metastore in the warehouse volume and
    # listens where the worker's connection looks by default
    thrift = SERVICES["spark-thrift"]
    command = thrift["command"]
    assert command[command.index("--master") + 1] == "spark://spark-master:7077"
    assert "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2" in command
    assert {m.split(":")[0]: m.split(":")[1] for m in thrift["volumes"]} == executor
    for option in ("spark.sql.warehouse.dir=", "databaseName="):
        path = next(c for c in command if option in c).split(option)[1].split(";")[0]
        assert path.startswith(driver["calltrail-warehouse"] + "/"), path
    port = next(c for c in command if c.startswith("hive.server2.thrift.port=")).split("=")[1]
    assert env_of("worker")["CALLTRAIL_SPARK_PORT"] == f"${{CALLTRAIL_SPARK_PORT:-{port}}}"
    assert not any("spark" in s.get("profiles", []) for n, s in SERVICES.items() if n not in spark), (
        "nothing else depends on the optional profile")


def test_the_deployment_passes_every_schema_name_with_its_default():
    """A deployment that shares its database or Spark metastore names its schemas in .env: each
    schema setting reaches the containers, defaulting as calltrail does."""
    from calltrail import settings

    defaults = {row.variable: row.default for row in settings.TABLE if row.parse is settings._schema}
    defaults |= {variable: default for output in ("postgres", "spark")
                 for variable, default in settings.profile_variables(output).items()
                 if variable in settings.SCHEMAS_READ_ELSEWHERE}
    assert len(defaults) == 6, defaults
    anchor_env = COMPOSE["x-airflow-common"]["environment"]
    for variable, default in defaults.items():
        assert anchor_env.get(variable) == f"${{{variable}:-{default}}}", variable
