"""The environment calltrail gives every Airflow process (``calltrail.ops.airflow_cli.environment``):
Python's warning filters keep a warning no user can act on out of Airflow's logs, after the user's own."""

from __future__ import annotations

import sys

from tests.airflow_env import BIN, airflow_env, run

STARLETTE = "Using `httpx` with `starlette.testclient` is deprecated"


def test_airflow_starts_without_starlettes_warning_and_the_users_own_warning_filters_stay(tmp_path):
    env = airflow_env(tmp_path, PYTHONWARNINGS="ignore::ImportWarning")
    assert env["PYTHONWARNINGS"].split(",")[0] == "ignore::ImportWarning", env["PYTHONWARNINGS"]
    quiet = run([str(BIN / "airflow"), "db", "migrate"], env)
    assert quiet.returncode == 0, quiet.stdout[-3000:] + quiet.stderr[-3000:]
    assert STARLETTE not in quiet.stdout + quiet.stderr, (quiet.stdout + quiet.stderr)[-3000:]
    # without the filter, importing Airflow's execution API (as every component does) warns: the
    # check above can fire
    loud = run([sys.executable, "-c", "import airflow.api_fastapi.execution_api.app"],
               {**env, "PYTHONWARNINGS": "ignore::ImportWarning"})
    assert loud.returncode == 0, loud.stdout[-3000:] + loud.stderr[-3000:]
    assert STARLETTE in loud.stdout + loud.stderr, (loud.stdout + loud.stderr)[-3000:]
