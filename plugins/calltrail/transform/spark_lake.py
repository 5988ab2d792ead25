"""The lake on the dbt target ``spark``: read where it lies, nothing copied.

Each dataset becomes a view ``<lake schema>.<dataset>`` (``CALLTRAIL_LAKE_SCHEMA``, default ``lake``) over its Parquet files (the read glob of
``calltrail__lake_<dataset>_glob``), the relation dbt's source of that name reads. A view is
resolved when it is queried, so it sees the partitions written since it was made; it is made again
each run all the same (a dataset's first files, a lake that moved).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from calltrail.lake.layout import datasets

log = logging.getLogger(__name__)

def register_lake(con: Any, lake_dir: Path, schema: str) -> dict[str, int]:
    """A view ``<schema>.<dataset>`` over the Parquet files of each dataset that has any, made through
    ``con`` (a :class:`calltrail.warehouse.target.Warehouse` on Spark, a session or a Thrift Server,
    which must read ``lake_dir`` under the same path); a dataset without files has no view (dbt's
    models read it as empty, ``calltrail.lake_source``). Returns each registered dataset's number
    of files."""
    con.ensure_schema(schema)
    registered: dict[str, int] = {}
    for name, glob in datasets().items():
        files = sum(1 for _ in lake_dir.glob(glob))
        if files:
            path = f"{lake_dir}/{glob}".replace("`", "``")
            con.execute(f"create or replace view {schema}.{name} as select * from parquet.`{path}`")
            registered[name] = files
        else:
            con.execute(f"drop view if exists {schema}.{name}")
        log.info("%s.%s: %s", schema, name, f"a view over {files} Parquet file(s)" if files else "no files yet, no view")
    return registered
