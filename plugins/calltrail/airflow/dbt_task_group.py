"""The dbt task group of the transformation DAG, built by astronomer-cosmos from the manifest.

Cosmos reads the manifest (``dbt_project/target/manifest.json``, or CALLTRAIL_DBT_TARGET_DIR) at DAG parse time (LoadMode.DBT_MANIFEST); it
never runs ``dbt ls`` while parsing. The manifest is written by ``calltrail setup`` (``dbt parse``).
"""

from __future__ import annotations

from typing import Any

from calltrail.settings import WAREHOUSE_POOL, Settings
from calltrail.transform.dbt import DBT, dbt_env, dbt_vars


class ManifestMissing(RuntimeError):
    pass


def wait_for_warehouse(context: Any) -> None:
    """Each dbt task's ``pre_execute``: wait (bounded) for the warehouse, or fail naming who holds
    it (:class:`calltrail.warehouse.duckdb_file.WarehouseLocked`), before dbt opens it."""
    from calltrail import settings as settings_module
    from calltrail.transform import dbt

    dbt.wait_for_warehouse(settings_module.load())


def dbt_task_group(settings: Settings, group_id: str) -> Any:
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    if not settings.dbt_manifest.exists():
        raise ManifestMissing(
            f"{settings.dbt_manifest} does not exist: run `make run` or `calltrail setup` "
            "(it runs `dbt parse`) before the scheduler parses this DAG"
        )
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=settings.dbt_project_dir,
            manifest_path=settings.dbt_manifest,
            install_dbt_deps=False,
            # cosmos runs dbt in a temporary copy of the project, with its own target folder there
            env_vars={k: v for k, v in dbt_env(settings).items() if k != "DBT_TARGET_PATH"},
            dbt_vars=dbt_vars(settings),
        ),
        profile_config=ProfileConfig(
            profile_name="calltrail",
            target_name=settings.dbt_target,
            profiles_yml_filepath=settings.dbt_project_dir / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            # A dbt process per task: an in-process runner would keep the DuckDB file open (and locked)
            # for the rest of the worker process, e.g. under `airflow dags test`.
            invocation_mode=InvocationMode.DBT_RUNNER,
            dbt_executable_path=DBT,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            emit_datasets=False,
            should_detach_multiple_parents_tests=True,  # relationships tests run after both models
        ),
        operator_args={"pool": WAREHOUSE_POOL, "install_deps": False, "pre_execute": wait_for_warehouse},
        default_args={"retries": 0},
    )
