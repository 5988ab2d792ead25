"""Which DAG run and task an alert or a check belongs to, from Airflow's task context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    dag_id: str
    run_id: str
    task_id: str = ""

    @classmethod
    def from_context(cls, context: dict[str, Any]) -> RunInfo:
        run = context.get("dag_run")
        ti = context.get("task_instance") or context.get("ti")
        return cls(dag_id=getattr(run, "dag_id", None) or "calltrail", run_id=getattr(run, "run_id", None) or "manual",
                   task_id=getattr(ti, "task_id", None) or "")
