"""Helpers to run calltrail's Airflow in a temporary home (a real Airflow, SQLite metadata)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from calltrail import settings as settings_module

BIN = Path(sys.executable).parent
# For tests whose landing files are written whole before ingestion reads them: nothing to watch
# settle (ingestion's watch of a file still being written is tests/faults/test_landing_file_being_written.py's).
WRITTEN_WHOLE = {settings_module.LANDING_SETTLE_VAR: "0"}


def calltrail_env(tmp: Path, **extra: str) -> dict[str, str]:
    """A process environment whose data and Airflow home live under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CALLTRAIL"))}
    env.update({"CALLTRAIL_DATA_DIR": str(tmp / "data"), "AIRFLOW_HOME": str(tmp / "data" / "airflow")})
    env.update(extra)
    return env


def airflow_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The full Airflow environment calltrail gives its components, for running ``airflow`` directly."""
    from calltrail.ops import airflow_cli

    settings = settings_module.load(calltrail_env(tmp, **extra))
    return airflow_cli.environment(settings)


def run(cmd: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
