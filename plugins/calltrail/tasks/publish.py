"""The publish task: after the audit passed, the consumer marts go into the publish schema."""

from __future__ import annotations

from calltrail.settings import Settings
from calltrail.warehouse.schemas import PUBLISHED


def publish(settings: Settings) -> str:
    from calltrail.transform.dbt import publish as run_publish

    run_publish(settings)
    return f"published into schema {PUBLISHED} of {settings.warehouse}"
