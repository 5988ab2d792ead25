"""The publish task: after the audit passed, the consumer marts go into the publish schema."""

from __future__ import annotations

from calltrail.settings import Settings
from calltrail.warehouse.schemas import PUBLISHED


def publish(settings: Settings, *, in_process: bool = False) -> str:
    """``in_process``: dbt runs in this process, as in the DAG's task (see :func:`calltrail.transform.dbt.run_dbt`)."""
    from calltrail.transform.dbt import publish as run_publish

    run_publish(settings, in_process=in_process)
    return f"published into schema {PUBLISHED} of {settings.warehouse}"
