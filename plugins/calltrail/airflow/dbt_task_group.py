"""The dbt task group of the transformation DAG: one ``dbt build``, and a task per seed and model.

- ``dbt.build`` runs every seed, model and data test in one dbt command, in its own process's dbt
  (:func:`calltrail.transform.dbt.build`), in the warehouse pool: dbt starts, parses and opens the
  warehouse once, not once per model.
- ``dbt.<seed or model>``, one per node, downstream of the build and of the nodes it reads, as in
  dbt's lineage: each reports its node's result, time and data tests from the build (read from the
  build's XCom), and fails, alerting once, if the node or one of its tests failed. A node dbt
  skipped because something before it failed fails too, naming why; a node whose parent task failed
  is ``upstream_failed`` and does not alert again.

The graph comes from the manifest (``dbt_project/target/manifest.json``, or CALLTRAIL_DBT_TARGET_DIR)
that ``calltrail setup`` writes with ``dbt parse``; parsing the DAG never runs dbt.

To build again after a failure, clear ``dbt.build`` with its downstream tasks: a node's task alone
only reports the build it follows.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from calltrail.settings import WAREHOUSE_POOL, Settings
from calltrail.transform import dbt_graph

log = logging.getLogger(__name__)

BUILD_DOC = """One `dbt build` of every seed, model and data test (the unit tests run with `make test`).
Each seed and model has a task of its own after this one, which shows its result, time and tests."""


class ManifestMissing(RuntimeError):
    pass


class DbtNodeFailed(RuntimeError):
    """A seed or model, or one of its data tests, failed in the build."""


def build_all() -> dict[str, dict]:
    """``dbt.build``: every node's result, for the nodes' tasks."""
    from airflow.sdk import get_current_context

    from calltrail import settings as settings_module
    from calltrail.transform import dbt

    full_refresh = bool(get_current_context()["params"].get("full_refresh", False))
    results = dbt.build(settings_module.load(), full_refresh=full_refresh)
    bad = sorted(uid for uid, r in results.items() if r["status"] in dbt_graph.FAILED)
    if bad:
        log.warning("%d node(s) or data test(s) failed; their tasks report them: %s", len(bad), ", ".join(bad))
    return results


def report_node(results: dict[str, dict], node: dict[str, Any]) -> str:
    """``dbt.<node>``: log the node's result and its tests'; fail if one of them failed."""
    found = dbt_graph.report(dbt_graph.Node(**{**node, "parents": tuple(node["parents"]),
                                               "tests": tuple(node["tests"])}), results)
    for line in found.lines:
        log.info("%s", line)
    if found.failures:
        raise DbtNodeFailed("; ".join(found.failures))
    return results.get(node["unique_id"], {}).get("status", "")


def dbt_task_group(settings: Settings, group_id: str) -> Any:
    from airflow.sdk import TaskGroup

    from calltrail.airflow.timeouts import task

    if not settings.dbt_manifest.exists():
        raise ManifestMissing(
            f"{settings.dbt_manifest} does not exist: run `make run` or `calltrail setup` "
            "(it runs `dbt parse`) before the scheduler parses this DAG"
        )
    nodes = dbt_graph.read(settings.dbt_manifest)
    with TaskGroup(group_id=group_id, tooltip="dbt: one build, then a task per seed and model") as group:
        # one XCom for the whole dict (a dict return would otherwise be pushed key by key: 145 XComs)
        results = task(task_id="build", pool=WAREHOUSE_POOL, retries=0, multiple_outputs=False,
                       doc_md=BUILD_DOC)(build_all)()
        tasks: dict[str, Any] = {}
        for node in nodes:
            doc = (f"The {node.resource_type} `{node.name}` in the build: its result and its data tests "
                   f"({len(node.tests)}).\n\n{node.description}")
            # op_kwargs are templated: the node goes in as data without its description
            reported = task(task_id=node.name, retries=0, doc_md=doc)(report_node)(
                results, {k: v for k, v in asdict(node).items() if k != "description"})
            for parent in node.parents:
                tasks[parent] >> reported
            tasks[node.unique_id] = reported
    return group
