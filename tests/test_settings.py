"""The settings table: one row per variable, defaults written once, values checked with the variable named."""

from __future__ import annotations

import pytest

from calltrail import cli
from calltrail import settings as settings_module
from calltrail.settings import PROJECT_ROOT, ConfigurationError, Settings, load


def test_each_variable_has_one_row_and_each_row_fills_its_own_field():
    variables = [row.variable for row in settings_module.TABLE]
    fills = [row.fills for row in settings_module.TABLE]
    assert len(variables) == len(set(variables)), f"a variable has two rows: {sorted(variables)}"
    assert len(fills) == len(set(fills)), f"two rows fill the same field: {sorted(fills)}"


def test_values_reach_the_nested_fields_their_rows_fill():
    s = load({"CALLTRAIL_DQ_SESSION_LANDING_PAGE_POPULATION_ERROR": "0.5",
              "CALLTRAIL_FRESHNESS_WEB_EVENTS_WARN_HOURS": "2", "CALLTRAIL_ALERT_EMAILS": "a@example.com; b@example.com",
              "CALLTRAIL_DATA_DOCS_URL": "https://docs.example.com/dq/", "CALLTRAIL_DQ_TREND_SEVERITY": "ERROR",
              "CALLTRAIL_SF_RECONCILE_SCHEDULE": "off", "CALLTRAIL_SF_CONN_ID": " sf_prod "})
    assert s.quality.thresholds["session_landing_page_population"] == settings_module.Threshold(0.99, 0.5)
    assert s.quality.freshness.web_events_warn_hours == 2
    assert s.quality.alerts.emails == ("a@example.com", "b@example.com")
    assert s.data_docs_index == "https://docs.example.com/dq/index.html"
    assert s.quality.trend.severity == "error"
    assert s.salesforce.reconcile_schedule is None and s.salesforce.conn_id == "sf_prod"
    by_variable = {row.variable: value for row, value in settings_module.in_use(s)}
    assert by_variable["CALLTRAIL_DQ_SESSION_LANDING_PAGE_POPULATION_ERROR"] == 0.5
    assert by_variable["CALLTRAIL_FRESHNESS_WEB_EVENTS_WARN_HOURS"] == 2


def test_the_dataclasses_default_to_what_an_empty_environment_gives():
    assert Settings() == load({})


def test_the_defaults_are_the_documented_ones():
    s = load({})
    assert s.salesforce.overlap_minutes == 15
    assert s.salesforce.reconcile_schedule == "0 4 * * 0"
    assert s.quality.thresholds["call_bizible_id_population"] == settings_module.Threshold(0.9, 0.75)
    assert s.quality.trend.factor == 2.0 and s.quality.freshness.salesforce_task_error_hours == 72
    assert s.quality.task_types == ("Call", "Phone Call", "Inbound Call", "Outbound Call", "Email", "Meeting", "Other")
    assert s.quality.alerts.emails == () and s.data_docs_url == ""
    assert s.dbt_target_dir == PROJECT_ROOT / "dbt_project" / "target"


def test_paths_default_to_folders_under_the_data_dir(tmp_path):
    s = load({"CALLTRAIL_DATA_DIR": str(tmp_path)})
    assert (s.landing_dir, s.lake_dir, s.warehouse, s.airflow_home, s.dbt_docs_dir, s.data_docs_dir) == (
        tmp_path / "landing", tmp_path / "lake", tmp_path / "warehouse" / "calltrail.duckdb", tmp_path / "airflow",
        tmp_path / "dbt_docs", tmp_path / "gx_data_docs")
    assert load({}).landing_dir == PROJECT_ROOT / "data" / "landing"
    # a location set itself does not follow the data dir; dbt's target folder is in the checkout
    s = load({"CALLTRAIL_DATA_DIR": str(tmp_path), "CALLTRAIL_LAKE_DIR": str(tmp_path / "elsewhere")})
    assert s.lake_dir == tmp_path / "elsewhere" and s.dbt_target_dir == PROJECT_ROOT / "dbt_project" / "target"


def test_a_blank_variable_takes_its_default():
    s = load({"CALLTRAIL_SF_OVERLAP_MINUTES": " ", "CALLTRAIL_DEMO": "", "CALLTRAIL_SF_CONN_ID": ""})
    assert (s.salesforce.overlap_minutes, s.demo_mode, s.salesforce.conn_id) == (15, "auto", "salesforce_default")


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("CALLTRAIL_SF_OVERLAP_MINUTES", "fifteen", "CALLTRAIL_SF_OVERLAP_MINUTES='fifteen' is not a whole number"),
    ("CALLTRAIL_DEMO_VISITORS", "0", "CALLTRAIL_DEMO_VISITORS=0 must be at least 1"),
    ("CALLTRAIL_SF_BACKOFF_SECONDS", "-1", "CALLTRAIL_SF_BACKOFF_SECONDS=-1.0 must not be negative"),
    ("CALLTRAIL_DQ_TREND_FACTOR", "1.0", "CALLTRAIL_DQ_TREND_FACTOR=1.0 must be above 1"),
    ("CALLTRAIL_DEMO", "sometimes", "CALLTRAIL_DEMO='sometimes': use one of auto, always, never"),
    ("CALLTRAIL_DQ_WINDOW_MIN_ROWS", "many", "CALLTRAIL_DQ_WINDOW_MIN_ROWS='many' is not a whole number"),
    ("CALLTRAIL_DBT_TARGET", "snowflake", "CALLTRAIL_DBT_TARGET='snowflake': use one of duckdb, postgres, spark"),
    ("CALLTRAIL_AIRFLOW_PORT", "80800", "CALLTRAIL_AIRFLOW_PORT=80800 is not a port: 1 to 65535"),
    ("CALLTRAIL_SPARK_LOCK_STALE_SECONDS", "5", "CALLTRAIL_SPARK_LOCK_STALE_SECONDS=5 must be at least 10 (seconds)"),
    # read by the dbt profile and calltrail's connections, not settings' rows: checked all the same
    ("CALLTRAIL_PG_PORT", "abc", "CALLTRAIL_PG_PORT='abc' is not a whole number"),
    ("CALLTRAIL_SPARK_PORT", "0", "CALLTRAIL_SPARK_PORT=0 must be at least 1"),
    ("CALLTRAIL_PG_SCHEMA", "CallTrail", "CALLTRAIL_PG_SCHEMA='CallTrail': a schema's name here is lower-case "
                                         "letters, digits and _, not starting with a digit"),
    ("CALLTRAIL_SPARK_SCHEMA", "analytics-calltrail", "CALLTRAIL_SPARK_SCHEMA='analytics-calltrail': a schema's "
                                                      "name here is lower-case letters, digits and _, not starting "
                                                      "with a digit"),
    ("CALLTRAIL_PUBLISH_SCHEMA", "Published", "CALLTRAIL_PUBLISH_SCHEMA='Published': a schema's name here is "
                                              "lower-case letters, digits and _, not starting with a digit"),
])
def test_a_value_calltrail_cannot_use_is_refused_with_the_variable_named(variable, value, message):
    with pytest.raises(ConfigurationError) as caught:
        load({variable: value})
    assert str(caught.value) == message


def test_a_schema_named_as_sql_writes_it_unquoted_is_taken():
    s = load({"CALLTRAIL_DBT_TARGET": "postgres", "CALLTRAIL_PG_SCHEMA": "calltrail_prod2",
              "CALLTRAIL_SPARK_SCHEMA": "_staging"})
    assert s.environ["CALLTRAIL_PG_SCHEMA"] == "calltrail_prod2"


@pytest.mark.parametrize(("env", "message"), [
    ({"CALLTRAIL_DBT_TARGET": "postgres", "CALLTRAIL_PUBLISH_SCHEMA": "calltrail"},
     "CALLTRAIL_PUBLISH_SCHEMA=calltrail is the schema of CALLTRAIL_PG_SCHEMA too"),
    ({"CALLTRAIL_DBT_TARGET": "spark", "CALLTRAIL_SPARK_SCHEMA": "lake"},
     "CALLTRAIL_LAKE_SCHEMA=lake is the schema of CALLTRAIL_SPARK_SCHEMA too"),
    ({"CALLTRAIL_QUALITY_SCHEMA": "main"},
     "CALLTRAIL_QUALITY_SCHEMA=main is the schema of the build schema (main in the DuckDB file) too"),
    ({"CALLTRAIL_PUBLISH_LOG_SCHEMA": "ops", "CALLTRAIL_QUALITY_SCHEMA": "ops"},
     "CALLTRAIL_QUALITY_SCHEMA=ops is the schema of CALLTRAIL_PUBLISH_LOG_SCHEMA too"),
])
def test_a_schema_named_for_two_uses_is_refused_naming_both(env, message):
    with pytest.raises(ConfigurationError) as caught:
        load(env)
    assert str(caught.value) == f"{message}: each of the warehouse's schemas needs a name of its own"


def test_the_schemas_are_the_dbt_projects_defaults_until_set_and_reach_every_dbt_command():
    from calltrail.dbt_project import project_var
    from calltrail.transform.dbt import dbt_vars

    default = load({})
    assert (default.lake_schema, default.publish_schema, default.publish_log_schema) == (
        project_var("calltrail__lake_schema"), project_var("calltrail__publish_schema"),
        project_var("calltrail__publish_log_schema"))
    s = load({"CALLTRAIL_LAKE_SCHEMA": "stg_lake", "CALLTRAIL_PUBLISH_SCHEMA": "stg_published",
              "CALLTRAIL_PUBLISH_LOG_SCHEMA": "stg_meta", "CALLTRAIL_QUALITY_SCHEMA": "stg_quality"})
    assert (s.publications, s.run_metrics) == ("stg_meta.publications", "stg_quality.run_metrics")
    assert {k: v for k, v in dbt_vars(s).items() if k.endswith("_schema")} == {
        "calltrail__lake_schema": "stg_lake", "calltrail__publish_schema": "stg_published",
        "calltrail__publish_log_schema": "stg_meta"}


@pytest.mark.parametrize("given", [{}, {"CALLTRAIL_PG_SCHEMA": "acme_build", "CALLTRAIL_SPARK_SCHEMA": "acme_build",
                                     "CALLTRAIL_PG_HOST": "pg.example.com", "CALLTRAIL_PG_PORT": "6432",
                                     "CALLTRAIL_PG_USER": "acme", "CALLTRAIL_PG_DATABASE": "acme"}])
def test_the_build_schema_and_the_postgresql_connection_are_what_dbts_profile_renders(given):
    """calltrail's own steps reach the schema and server dbt builds into, set or by default."""
    from calltrail.warehouse.postgres import connection_params
    from calltrail.warehouse.spark import profile_output

    for target, method, output in (("postgres", "thrift", "postgres"), ("spark", "session", "spark"),
                                   ("spark", "thrift", "spark_thrift")):
        env = {**given, "CALLTRAIL_DBT_TARGET": target, "CALLTRAIL_SPARK_METHOD": method}
        rendered = profile_output(env, output)
        assert load(env).build_schema == rendered["schema"] == given.get("CALLTRAIL_PG_SCHEMA", "calltrail"), output
    rendered = profile_output(given, "postgres")
    params = connection_params(given)
    assert {key: params[key] for key in ("host", "user", "dbname")} == {
        key: rendered[key] for key in ("host", "user", "dbname")}
    assert str(params["port"]) == rendered["port"].strip()


def test_calltrail_settings_prints_each_variable_with_its_value_and_where_it_came_from(monkeypatch, capsys, tmp_path):
    for row in settings_module.TABLE:
        monkeypatch.delenv(row.variable, raising=False)
    monkeypatch.setenv("CALLTRAIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CALLTRAIL_SF_OVERLAP_MINUTES", "3")
    assert cli.main(["settings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(settings_module.TABLE), lines
    assert ("CALLTRAIL_SF_OVERLAP_MINUTES=3  # set; default 15: each extraction starts reading this many minutes "
            "before the watermark") in lines, lines
    assert f"CALLTRAIL_LAKE_DIR={tmp_path / 'lake'}  # default: raw data as Parquet, with quarantine/" in lines, lines
    assert ("CALLTRAIL_SF_RECONCILE_SCHEDULE='0 4 * * 0'  # default: when the reconciliation of deletes runs: "
            "cron, preset, or off") in lines, lines


def test_every_variable_the_dbt_profile_reads_is_a_setting_or_a_connection_variable_with_a_meaning():
    for output in ("duckdb", "postgres", "spark", "spark_thrift"):
        read = settings_module.profile_variables(output)
        assert read, output
        unknown = set(read) - {row.variable for row in settings_module.TABLE} - set(settings_module.READ_BY_THE_PROFILE)
        assert not unknown, f"the output {output} reads {sorted(unknown)}: give them a meaning in READ_BY_THE_PROFILE"


@pytest.mark.parametrize(("environ", "header", "expected", "absent"), [
    ({"CALLTRAIL_DBT_TARGET": "postgres", "CALLTRAIL_PG_HOST": "pg.example.com", "CALLTRAIL_PG_PASSWORD": "s3cret"},
     "postgres",
     ["CALLTRAIL_PG_HOST=pg.example.com  # set; default localhost: the PostgreSQL server; while it is not set, "
      "`calltrail run` starts a throwaway server for the run instead (the scheduler needs one set)",
      "CALLTRAIL_PG_PORT=5432  # default: the PostgreSQL server's port",
      "# CALLTRAIL_PG_PASSWORD: set, not shown: that user's password",
      "CALLTRAIL_PG_SSLMODE=''  # default: TLS: libpq's sslmode (verify-full checks the server's certificate and "
      "name); empty, libpq's prefer"],
     ["s3cret", "CALLTRAIL_SPARK_"]),
    ({"CALLTRAIL_DBT_TARGET": "spark", "CALLTRAIL_SPARK_MASTER": "spark://master.example.com:7077"},
     "spark",
     ["CALLTRAIL_SPARK_MASTER=spark://master.example.com:7077  # set; default 'local[*]': where Spark runs: "
      "local[*] on this machine, or a cluster's master URL",
      "CALLTRAIL_SPARK_DRIVER_MEMORY=4g  # default: the Spark driver's heap"],
     ["CALLTRAIL_SPARK_HOST", "CALLTRAIL_PG_"]),
    ({"CALLTRAIL_DBT_TARGET": "spark", "CALLTRAIL_SPARK_METHOD": "thrift", "CALLTRAIL_SPARK_PORT": "10001"},
     "spark_thrift",
     ["CALLTRAIL_SPARK_HOST=localhost  # default: the Spark Thrift Server",
      "CALLTRAIL_SPARK_PORT=10001  # set; default 10000: the Spark Thrift Server's port",
      "# CALLTRAIL_SPARK_PASSWORD: not set: the password of the authentication ldap",
      "CALLTRAIL_SPARK_SSL_CA=''  # default: a PEM file of the CA that signed the server's certificate, when the "
      "system does not trust it (calltrail's connection; dbt-spark does not check it)"],
     ["CALLTRAIL_SPARK_MASTER", "CALLTRAIL_PG_"]),
], ids=("postgres", "spark-session", "spark-thrift"))
def test_calltrail_settings_adds_the_configured_warehouses_connection_without_its_password(
        monkeypatch, capsys, tmp_path, environ, header, expected, absent):
    for row in settings_module.TABLE:
        monkeypatch.delenv(row.variable, raising=False)
    for variable in settings_module.READ_BY_THE_PROFILE:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CALLTRAIL_DATA_DIR", str(tmp_path))
    for variable, value in environ.items():
        monkeypatch.setenv(variable, value)
    assert cli.main(["settings"]) == 0
    lines = capsys.readouterr().out.splitlines()
    tail = lines[len(settings_module.TABLE):]
    assert tail[0] == (f"# the warehouse's connection: read by the output {header} of dbt_project/profiles.yml "
                       "and by calltrail's connection to it"), tail
    for line in expected:
        assert line in tail, tail
    for text in absent:
        assert not any(text in line for line in tail), (text, tail)
