"""Airflow on this machine, for ``make run`` and the tests: SQLite metadata, local folders.

Every Airflow process calltrail starts gets the same environment from :func:`environment`.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
from pathlib import Path

from calltrail.settings import PROJECT_ROOT, WAREHOUSE_POOL, Settings

log = logging.getLogger(__name__)

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _jwt_secret(airflow_home: Path) -> str:
    """A per-installation secret (64+ bytes) shared by every Airflow component."""
    path = airflow_home / ".jwt_secret"
    if not path.exists():
        airflow_home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


def environment(settings: Settings) -> dict[str, str]:
    env = dict(settings.environ)
    home = settings.airflow_home
    env["AIRFLOW_HOME"] = str(home)
    defaults = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        # cosmos keeps dbt's partial parse between tasks here (its default, /tmp/cosmos, is shared
        # by every Airflow home on the machine).
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "AIRFLOW__API_AUTH__JWT_SECRET": _jwt_secret(home),
        # calltrail's own locations, so every task sees the same lake whatever its working folder.
        "CALLTRAIL_LANDING_DIR": str(settings.landing_dir),
        "CALLTRAIL_LAKE_DIR": str(settings.lake_dir),
        "CALLTRAIL_WAREHOUSE": str(settings.warehouse),
        "CALLTRAIL_DATA_DOCS_DIR": str(settings.data_docs_dir),
        "CALLTRAIL_DBT_DOCS_DIR": str(settings.dbt_docs_dir),
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    return env


def airflow(args: list[str], env: dict[str, str], log_file: Path, *, check: bool = True) -> int:
    """Run an ``airflow`` CLI command with its output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a") as fh:
        fh.write(f"\n$ airflow {' '.join(args)}\n")
        fh.flush()
        rc = subprocess.run([AIRFLOW, *args], env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    if check and rc != 0:
        raise RuntimeError(f"airflow {' '.join(args)} failed (exit {rc}); see {log_file}")
    return rc


def prepare(settings: Settings, env: dict[str, str], log_file: Path) -> None:
    """Create or upgrade the metadata database, the pools and the dbt manifest. Safe to repeat."""
    from calltrail.transform.dbt_commands import parse

    airflow(["db", "migrate"], env, log_file)
    airflow(["pools", "set", WAREHOUSE_POOL, "1",
             "DuckDB allows one writer and readers conflict with it: every task that opens the warehouse"],
            env, log_file)
    parse(settings, log_file=log_file)


def connection_configured(conn_id: str, env: dict[str, str], log_file: Path) -> bool:
    return airflow(["connections", "get", conn_id, "-o", "json"], env, log_file, check=False) == 0


def dags_test(dag_id: str, env: dict[str, str], log_file: Path, *, logical_date: str | None = None,
              conf: str | None = None) -> int:
    args = ["dags", "test", dag_id]
    if logical_date:
        args.append(logical_date)
    if conf:
        args += ["--conf", conf]
    return airflow(args, env, log_file, check=False)
