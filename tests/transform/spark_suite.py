"""The Spark side of tests/transform/test_spark.py, started in the background when the test session
starts (tests/conftest.py), as the live Airflow is: Spark keeps a core busy for several minutes
planning queries, which the rest of the suite would otherwise wait for.

Side by side: `calltrail run` on the spark target (what `CALLTRAIL_DBT_TARGET=spark make run`
runs), then the reading back of its warehouse (tests/transform/spark_dump.py); and the
late-arriving data built step by step on a second Spark warehouse (spark_late_data.py). Each
writes its output into its log in ``OUT``, and their exit codes go into ``OUT/exit_codes.json``.

    python -m tests.transform.spark_suite OUT
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.airflow_env import BIN, calltrail_env

ROOT = Path(__file__).resolve().parents[2]


def environments(out: Path) -> dict[str, dict[str, str]]:
    """The environments of the demo run on Spark and of the late-data steps, each with its own data
    folder, dbt target folder (each runs dbt beside the other tests) and Spark warehouse."""
    demo = calltrail_env(out / "demo", CALLTRAIL_DEMO_VISITORS="80", CALLTRAIL_DBT_TARGET="spark",
                         CALLTRAIL_DBT_TARGET_DIR=str(out / "demo" / "dbt_target"))
    late = calltrail_env(out / "late", CALLTRAIL_DBT_TARGET="spark",
                         CALLTRAIL_DBT_TARGET_DIR=str(out / "late" / "dbt_target"))
    return {"demo": demo, "late": late}


def _logged(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as fh:
        return subprocess.Popen(cmd, env={**env, "PYTHONPATH": os.pathsep.join(["plugins", "."])}, cwd=ROOT,
                                stdout=fh, stderr=subprocess.STDOUT)


def main(out: Path) -> int:
    envs = environments(out)
    (out / "environments.json").write_text(json.dumps(envs))
    run = _logged([str(BIN / "calltrail"), "run"], envs["demo"], out / "run.log")
    late = _logged([sys.executable, "-m", "tests.transform.spark_late_data", str(out / "late_out")],
                   envs["late"], out / "late.log")
    codes = {"run": run.wait()}
    if codes["run"] == 0:
        dump = _logged([sys.executable, "-m", "tests.transform.spark_dump", str(out / "spark_out")],
                       envs["demo"], out / "dump.log")
        codes["dump"] = dump.wait()
    codes["late"] = late.wait()
    (out / "exit_codes.json").write_text(json.dumps(codes))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
