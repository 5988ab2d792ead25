"""`calltrail run` and `calltrail setup` when they cannot even start: one line that says why (dbt's
own reason when dbt parse fails), exit 1, no traceback. And `calltrail run` when its warehouse is
out of reach: the failure told as any other."""

from __future__ import annotations

import pytest

from tests.airflow_env import BIN, calltrail_env, run
from tests.airflow_live import free_port


@pytest.mark.parametrize(("command", "failed"), [
    ("run", "calltrail run FAILED while preparing Airflow and dbt: dbt parse failed (exit 2): "),
    ("setup", "calltrail setup FAILED: dbt parse failed (exit 2): "),
], ids=("run", "setup"))
def test_a_dbt_parse_that_fails_ends_the_command_in_one_line_with_dbts_reason(tmp_path, command, failed):
    not_a_folder = tmp_path / "dbt_target"
    not_a_folder.write_text("a file where dbt's target folder should be\n")
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET_DIR=str(not_a_folder))
    out = run([str(BIN / "calltrail"), command], env, timeout=300)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"{failed}[Errno 20] Not a directory: '{not_a_folder}/" in out.stdout, out.stdout
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
    assert "running calltrail_ingest" not in out.stdout
    assert "the full output is in " in out.stdout


def test_a_target_calltrail_does_not_build_is_refused_before_anything_starts(tmp_path):
    out = run([str(BIN / "calltrail"), "run"], calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="snowflake"), timeout=300)
    assert out.returncode == 2, out.stdout[-3000:] + out.stderr[-3000:]
    assert "CALLTRAIL_DBT_TARGET='snowflake': use one of duckdb, postgres, spark" in out.stderr, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert "preparing the Airflow metadata database" not in out.stdout


def test_a_warehouse_out_of_reach_fails_the_run_with_its_cause_and_where_the_logs_are(tmp_path):
    """The spark target through a Spark Thrift Server that nothing serves: the transformation DAG
    fails, and the run's summary cannot read the published marts either."""
    port = free_port()
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="spark", CALLTRAIL_SPARK_METHOD="thrift",
                        CALLTRAIL_SPARK_HOST="127.0.0.1", CALLTRAIL_SPARK_PORT=str(port),
                        CALLTRAIL_DBT_TARGET_DIR=str(tmp_path / "dbt_target"))
    out = run([str(BIN / "calltrail"), "run"], env, timeout=900)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    unreachable = f"cannot reach the Spark Thrift Server at 127.0.0.1:{port} "
    assert f"    cause: calltrail_transform / register_lake_on_spark: SparkUnavailable: {unreachable}" in out.stdout
    assert f"  the published marts could not be read: {unreachable}" in out.stdout, out.stdout
    failed = out.stdout[out.stdout.index("calltrail run FAILED: "):].splitlines()
    assert failed[0].startswith(f"calltrail run FAILED: calltrail_transform / register_lake_on_spark: "
                                f"SparkUnavailable: {unreachable}"), failed
    assert failed[-1].startswith("  ") and "task logs: " in failed[-1], failed
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
