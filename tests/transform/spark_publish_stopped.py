"""A publish on Spark that stops half way, on the warehouse of the Thrift Server run
(tests/transform/spark_suite.py), and the publish after it; tests/transform/test_spark.py checks
what this saw. Writes ``OUT/publish_stopped.json``.

First, one published mart is made a table again, with a ``<mart>__publishing`` copy beside it, as
publish on Spark left them before it wrote views (docs/deploying.md). Then a data file of the build
table of ``fct_attribution`` (the sixth of the eight published marts) is overwritten with bytes
that are not Parquet, so publish copies the marts before it and then fails on that one, as on
storage that lost a file. Seen: the error, and before the publish, after it and after the next
publish (the file given back), as a reader that connects then finds them: the published marts'
row counts, whether each is a view and which version it reads, the publications recorded, and the
tables of the publish schema; and what a reader's session kept open since before the publishes
reads after them, and from which files.

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
OLD_LAYOUT = "rpt_revenue_by_channel"  # made a table again, as publish left it before it wrote views


def _said(exc: Exception, limit: int) -> str:
    return f"unreadable: {' '.join(str(exc).split())[:limit]}"


def main(out: Path, warehouse: Path) -> int:
    settings = settings_module.load()
    build, published = settings.build_schema, settings.publish_schema
    setup = thrift_connection(settings.environ).cursor()
    old = f"`{published}`.`{OLD_LAYOUT}`"
    setup.execute(f"create table `{published}`.`{OLD_LAYOUT}__publishing` using parquet as select * from {old}")
    setup.execute(f"drop view {old}")
    setup.execute(f"create table {old} using parquet as select * from `{published}`.`{OLD_LAYOUT}__publishing`")
    # a reader's session that stays open across the publishes (a BI tool's)
    reader = thrift_connection(settings.environ).cursor()
    reader.execute(f"select count(*) from `{published}`.`fct_touchpoints`")
    reader.fetchall()

    def state() -> dict:
        """As a reader that connects now finds the publish schema."""
        cur = thrift_connection(settings.environ).cursor()
        counts, reads = {}, {}
        for model in PUBLISHED_MODELS:
            try:
                cur.execute(f"select count(*) from `{published}`.`{model}`")
                counts[model] = cur.fetchall()[0][0]
                cur.execute(f"describe table extended `{published}`.`{model}`")
                detail = {str(name): str(value) for name, value, *_ in cur.fetchall()}
                reads[model] = detail.get("View Text", "").split(" from ")[-1] if detail.get("Type") == "VIEW" else "(a table)"
            except Exception as exc:  # a mart missing: the test says which
                counts[model] = _said(exc, 200)
        cur.execute(f"select count(*) from `{settings.publish_log_schema}`.publications")
        publications = cur.fetchall()[0][0]
        cur.execute(f"show tables in `{published}`")
        return {"counts": counts, "reads": reads, "publications": publications,
                "tables": sorted(str(r[1]) for r in cur.fetchall())}

    seen = {"models": list(PUBLISHED_MODELS), "old_layout": OLD_LAYOUT, "publish_schema": published,
            "before": state()}
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
    # The open session read fct_touchpoints before: Spark keeps that session's list of its files
    try:
        reader.execute(f"select count(*) from `{published}`.`fct_touchpoints`")
        count = reader.fetchall()[0][0]
        reader.execute(f"select distinct input_file_name() from `{published}`.`fct_touchpoints`")
        seen["open_session"] = {"count": count, "files": sorted(str(r[0]) for r in reader.fetchall())}
    except Exception as exc:
        seen["open_session"] = {"count": _said(exc, 300), "files": []}
    (out / "publish_stopped.json").write_text(json.dumps(seen, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
