"""The transformation DAG's own dbt task beside the build (one ``dbt build`` and a task per model,
in :mod:`calltrail.airflow.dbt_task_group`): the lineage docs of every build."""

from __future__ import annotations

from calltrail.settings import Settings


def generate_dbt_docs(settings: Settings, *, in_process: bool = False) -> str:
    """dbt docs (models, columns, lineage) into ``CALLTRAIL_DBT_DOCS_DIR``; returns the index page.

    ``in_process``: dbt runs in this process, as in the DAG's task.
    """
    from calltrail.transform.dbt import generate_docs

    return str(generate_docs(settings, in_process=in_process))


def load_lake_into_postgres(settings: Settings) -> str:
    """The dbt target ``postgres`` only: the lake's new partitions into the lake schema of the
    PostgreSQL warehouse (:mod:`calltrail.transform.postgres_lake`); what was loaded, per dataset."""
    import logging

    from calltrail.transform.postgres_lake import load_lake

    results = load_lake(settings.lake_dir, settings.environ, schema=settings.lake_schema,
                        wait_seconds=settings.warehouse_lock_wait_seconds)
    lines = [r.describe() for r in results]
    for line in lines:
        logging.getLogger(__name__).info("%s", line)
    return "; ".join(lines)


def register_lake_on_spark(settings: Settings) -> str:
    """The dbt target ``spark`` only: a view ``<lake schema>.<dataset>`` over each dataset's Parquet files
    (:func:`calltrail.transform.spark_lake.register_lake`); what was registered."""
    from calltrail.transform.spark_lake import register_lake
    from calltrail.warehouse.target import open_warehouse

    with open_warehouse(settings) as con:
        registered = register_lake(con, settings.lake_dir, settings.lake_schema)
    said = "; ".join(f"{settings.lake_schema}.{name}: {files} file(s)" for name, files in registered.items())
    return said or "the lake has no files yet"
