"""The publish task: after the audit passed, the consumer marts go into the publish schema, and the
report page is written from them."""

from __future__ import annotations

import logging

from calltrail.settings import Settings

log = logging.getLogger(__name__)


def publish(settings: Settings, *, in_process: bool = False, audited_build: str | None = None) -> str:
    """``in_process``: dbt runs in this process, as in the DAG's task (see :func:`calltrail.transform.dbt.run_dbt`).
    ``audited_build``: the build the audit checked; a build schema written since is not published
    (:func:`calltrail.transform.dbt.publish`).

    The marts are published first; a report page that cannot be written then is logged as an error
    and said in the task's result, and does not undo the publish.
    """
    from calltrail.report import page
    from calltrail.transform.dbt import publish as run_publish
    from calltrail.warehouse.target import describe

    run_publish(settings, in_process=in_process, audited_build=audited_build)
    done = f"published into schema {settings.publish_schema} of {describe(settings)}"
    try:
        written = page.write(settings, read_only=False)
    except Exception as exc:  # the marts are published: the page is news, not a reason to fail the run
        log.exception("the report page could not be written into %s", settings.report_dir)
        return f"{done}; the report page could NOT be written ({type(exc).__name__}: {exc}): see this task's log"
    return f"{done}; report page {written.index} ({written.bytes:,} bytes, {written.seconds:.1f} s)"
