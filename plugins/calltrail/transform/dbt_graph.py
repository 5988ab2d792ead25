"""The dbt project as the transformation DAG shows it: one task per seed and model, from the
manifest that ``dbt parse`` writes, and what each task reports from the one ``dbt build``.

The DAG runs all of dbt's work in one command (:func:`calltrail.transform.dbt.build`) and then
gives every seed and model a task of its own that reports its node's result and the results of its
data tests. A data test belongs to the latest of the nodes it reads (a relationships test of
``fct_touchpoints`` and ``int_sessions`` to ``fct_touchpoints``): it ran after both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

BUILT = ("model", "seed")  # the resource types that get a task
FAILED = {"error", "fail", "runtime error"}
WARNED = {"warn"}


@dataclass(frozen=True)
class Node:
    unique_id: str
    name: str
    resource_type: str
    parents: tuple[str, ...]  # unique ids of the seeds and models it reads
    description: str = ""
    tests: tuple[str, ...] = field(default=())  # unique ids of the data tests reported with it


def read(manifest: Path) -> list[Node]:
    """The seeds and models of the project, parents before children, with their data tests."""
    doc = json.loads(manifest.read_text())
    project = doc.get("metadata", {}).get("project_name")
    nodes = {uid: n for uid, n in doc["nodes"].items()
             if n["resource_type"] in BUILT and n.get("package_name", project) == project and _enabled(n)}
    parents = {uid: tuple(sorted(p for p in _reads(n) if p in nodes)) for uid, n in nodes.items()}
    order = _parents_first(parents)
    rank = {uid: i for i, uid in enumerate(order)}
    ancestors = _ancestors(parents, order)
    tests: dict[str, list[str]] = {uid: [] for uid in nodes}
    for uid, n in doc["nodes"].items():
        if n["resource_type"] != "test" or not _enabled(n):
            continue
        read_nodes = [p for p in _reads(n) if p in nodes]
        if read_nodes:
            tests[_owner(read_nodes, ancestors, rank)].append(uid)
    return [Node(uid, nodes[uid]["name"], nodes[uid]["resource_type"], parents[uid],
                 nodes[uid].get("description", ""), tuple(sorted(tests[uid]))) for uid in order]


def _enabled(node: dict) -> bool:
    return node.get("config", {}).get("enabled", True)


def _reads(node: dict) -> list[str]:
    """The unique ids a manifest node depends on (a seed has no ``depends_on.nodes``)."""
    return node.get("depends_on", {}).get("nodes", [])


def _parents_first(parents: dict[str, tuple[str, ...]]) -> list[str]:
    waiting = {uid: set(ps) for uid, ps in parents.items()}
    order: list[str] = []
    while waiting:
        ready = sorted(uid for uid, ps in waiting.items() if not ps)
        if not ready:
            raise ValueError(f"the dbt graph has a cycle among {sorted(waiting)}")
        for uid in ready:
            del waiting[uid]
            order.append(uid)
        for ps in waiting.values():
            ps.difference_update(ready)
    return order


def _ancestors(parents: dict[str, tuple[str, ...]], order: list[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for uid in order:
        found[uid] = set(parents[uid]).union(*(found[p] for p in parents[uid]))
    return found


def _owner(read_nodes: list[str], ancestors: dict[str, set[str]], rank: dict[str, int]) -> str:
    """The node that reads all the others (so the test ran after every one), else the latest."""
    for uid in read_nodes:
        if all(o == uid or o in ancestors[uid] for o in read_nodes):
            return uid
    return max(read_nodes, key=rank.__getitem__)


@dataclass(frozen=True)
class Report:
    """What a node's task says about the build: its lines for the log, and the failures (if any)."""

    lines: list[str]
    failures: list[str]


def report(node: Node, results: dict[str, dict]) -> Report:
    """A node's result and its tests' from ``results`` (unique id -> ``{"status", "seconds",
    "message"}``, as :func:`calltrail.transform.dbt.build` returns them)."""
    lines: list[str] = []
    failures: list[str] = []
    own = results.get(node.unique_id)
    if own is None:
        failures.append(f"{node.name}: the build did not report this {node.resource_type}: dbt did not select it")
    else:
        lines.append(f"{node.name}: {own['status']} in {own['seconds']:.2f} s" +
                     (f" ({own['message']})" if own.get("message") else ""))
        if own["status"] in FAILED:
            failures.append(f"{node.name} failed: {own.get('message') or own['status']}")
        elif own["status"] == "skipped":
            failures.append(f"{node.name} was skipped by dbt: a node or data test it depends on failed "
                            "(see that one's task)")
    for test in node.tests:
        result = results.get(test)
        name = test.split(".")[2] if test.count(".") >= 2 else test
        if result is None:
            lines.append(f"  test {name}: not run")
            continue
        lines.append(f"  test {name}: {result['status']}" + (f" ({result['message']})" if result.get("message") else ""))
        if result["status"] in FAILED:
            failures.append(f"the data test {name} of {node.name} failed: {result.get('message') or result['status']}")
        elif result["status"] in WARNED:
            lines.append(f"  warning: the data test {name} warns: {result.get('message') or 'warn'}")
    return Report(lines, failures)
