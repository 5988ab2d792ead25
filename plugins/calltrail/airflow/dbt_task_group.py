"""The dbt task group of the transformation DAG, built by astronomer-cosmos from the manifest.

Cosmos reads the manifest (``dbt_project/target/manifest.json``, or CALLTRAIL_DBT_TARGET_DIR) at DAG parse time (LoadMode.DBT_MANIFEST); it
never runs ``dbt ls`` while parsing. The manifest is written by ``calltrail setup`` (``dbt parse``).
"""

from __future__ import annotations

import gc
from typing import Any

from calltrail.settings import WAREHOUSE_POOL, Settings
from calltrail.transform.dbt import DBT, PROFILE, dbt_env, dbt_vars


class ManifestMissing(RuntimeError):
    pass


def before_dbt(context: Any) -> None:
    """Each dbt task's ``pre_execute``.

    - Collect the garbage and freeze what survives (``gc.freeze``). cosmos runs ``gc.collect()``
      after every dbt command, to release the dbt adapters' semaphores. In a process that holds
      Airflow, dbt and great_expectations, a full collection walks every live object: 0.4 s per
      task, and the collections Python starts on its own during the command cost as much again.
      Frozen objects are left out of every later collection, so those walk only what the command
      made. Under ``airflow dags test`` every task shares one process: each task first collects
      the garbage of the tasks before it, then freezes what is alive. (Cycles among frozen objects
      that die later are not collected; objects without cycles are freed as always.)
    - Wait (bounded) for the warehouse, or fail naming who holds it
      (:class:`calltrail.warehouse.duckdb_file.WarehouseLocked`), before dbt opens it.
    """
    from calltrail import settings as settings_module
    from calltrail.transform import dbt

    gc.collect()
    gc.freeze()
    dbt.wait_for_warehouse(settings_module.load())


def dbt_task_group(settings: Settings, group_id: str) -> Any:
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior, TestIndirectSelection

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
            profile_name=PROFILE,
            target_name=settings.dbt_target,
            profiles_yml_filepath=settings.dbt_project_dir / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            # dbt runs inside the task's own process (dbtRunner), not as a child process: under
            # `airflow dags test` every task shares one process, which imports dbt once instead of
            # once per task. dbt-duckdb lets go of the warehouse file at the end of each dbt
            # command because the profile sets `keep_open: false`.
            invocation_mode=InvocationMode.DBT_RUNNER,
            dbt_executable_path=DBT,
            # A model's task also runs the tests whose other models are its ancestors (the
            # relationships tests of fct_touchpoints and int_calls_matched_to_sessions to
            # int_sessions), so they run once, after both models, without a task of their own.
            test_indirect_selection=TestIndirectSelection.BUILDABLE,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            # One task per seed and model, `dbt build --select <node>`: the node, then its data tests.
            test_behavior=TestBehavior.BUILD,
            # The unit tests check the SQL on fixed inputs, not the data: they run with `make test`
            # (tests/transform/test_dbt_build.py), not on every run (docs/benchmark.md, decisions).
            exclude=["resource_type:unit_test"],
            emit_datasets=False,
        ),
        operator_args={"pool": WAREHOUSE_POOL, "install_deps": False, "pre_execute": before_dbt,
                       # no manifest.json and run_results.json in the task's temporary copy of the
                       # project, which nothing reads: about 0.3 s of each task's 1.4 s
                       "dbt_cmd_global_flags": ["--no-write-json"]},
        default_args={"retries": 0},
    )
