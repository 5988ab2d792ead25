"""A publish on Spark that stops half way, on the warehouse of the Thrift Server run
(tests/transform/spark_suite.py), and the publish after it; tests/transform/test_spark.py checks
what this saw. Writes ``OUT/publish_stopped.json``.

A data file of the build table of ``fct_attribution`` (the sixth of the eight published marts) is
overwritten with bytes that are not Parquet, so publish copies the marts before it and then fails
on that one, as on storage that lost a file. Seen: the error, the published marts' row counts and
the publications recorded before the publish, after it and after the next publish (the file given
back), and the tables of the publish schema after each, as a reader that connects then finds them;
and what a reader's session kept open since before the publishes reads after them, before and
after ``refresh table``.

    python -m tests.transform.spark_publish_stopped OUT SERVER_WAREHOUSE_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from calltrail import settings as settings_module
from calltrail.transform.dbt import publish
from calltrail.warehouse.schemas import PUBLISHED_MODELS
from calltrail.warehouse.spark import thrift_connection

BROKEN = "fct_attribution"


def main(out: Path, warehouse: Path) -> int:
    settings = settings_module.load()
    build, published = settings.build_schema, settings.publish_schema
    # a reader's session that stays open across the publishes (a BI tool's)
    reader = thrift_connection(settings.environ).cursor()
    reader.execute(f"select count(*) from `{published}`.`fct_touchpoints`")
    reader.fetchall()

    def state() -> dict:
        """As a reader that connects now finds the publish schema."""
        cur = thrift_connection(settings.environ).cursor()
        counts = {}
        for model in PUBLISHED_MODELS:
            try:
                cur.execute(f"select count(*) from `{published}`.`{model}`")
                counts[model] = cur.fetchall()[0][0]
            except Exception as exc:  # a mart missing: the test says which
                counts[model] = f"unreadable: {' '.join(str(exc).split())[:200]}"
        cur.execute(f"select count(*) from `{settings.publish_log_schema}`.publications")
        publications = cur.fetchall()[0][0]
        cur.execute(f"show tables in `{published}`")
        return {"counts": counts, "publications": publications, "tables": sorted(str(r[1]) for r in cur.fetchall())}

    seen = {"models": list(PUBLISHED_MODELS), "before": state()}
    data_file = sorted((warehouse / f"{build}.db" / BROKEN).rglob("*.parquet"))[0]
    kept = data_file.read_bytes()
    data_file.write_bytes(b"not a Parquet file")
    seen["broken"] = str(data_file)
    try:
        publish(settings, in_process=True)
        seen["error"] = None
    except Exception as exc:
        seen["error"] = f"{type(exc).__name__}: {exc}"
    seen["stopped"] = state()
    data_file.write_bytes(kept)
    publish(settings, in_process=True)
    seen["next"] = state()
    # The open session's Spark caches the list of the table's files, which the publish replaced
    seen["open_session"] = {}
    for when in ("after the next publish", "after refresh table"):
        try:
            reader.execute(f"select count(*) from `{published}`.`fct_touchpoints`")
            seen["open_session"][when] = reader.fetchall()[0][0]
        except Exception as exc:
            seen["open_session"][when] = f"unreadable: {' '.join(str(exc).split())[:300]}"
        reader.execute(f"refresh table `{published}`.`fct_touchpoints`")
    (out / "publish_stopped.json").write_text(json.dumps(seen, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
