"""`calltrail run` when it cannot even start: one line that says why, exit 1, no traceback."""

from __future__ import annotations

from tests.airflow_env import BIN, calltrail_env, run


def test_a_dbt_project_that_does_not_parse_fails_the_run_in_one_line(tmp_path):
    env = calltrail_env(tmp_path, CALLTRAIL_DBT_TARGET="no_such_target",
                        CALLTRAIL_DBT_TARGET_DIR=str(tmp_path / "dbt_target"))
    out = run([str(BIN / "calltrail"), "run"], env, timeout=300)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert "calltrail run FAILED while preparing Airflow and dbt: dbt parse failed" in out.stdout, out.stdout
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-3000:]
    assert "running calltrail_ingest" not in out.stdout
