"""make bench: generate N visitors, then time ingestion, the dbt build of the models, validation
and the floor (one hand-written DuckDB script for the same sessions, matches and attribution,
checked row for row against the build); then the same build on the last build's warehouse after
1 % more events and Tasks spread over the history, after nothing new and after the newest 1 %
again (each checked row for row against a build from scratch); then the demo: ``make run`` from
clean data, and the transformation DAG (and its dbt tasks) against a plain ``dbt build`` of the
same nodes on the same lake (``--demo-only``: only the demo part; ``--no-demo``: without it); then
the same dbt build on Spark and on DuckDB of a smaller lake (``--spark-visitors``, about a million
page views by default; ``--spark-only``, ``--no-spark``), and on each an incremental build after
the newest 1 % (Spark's checked row for row against DuckDB's); last, the incremental builds' fixed cost:
the same bench on a lake of a few thousand events (``--small-visitors``; ``--no-small``).

The default size is the one the benchmark is specified at: about ten million page views, a
million Tasks, 300,000 people, 100,000 opportunities and 300,000 contact roles (the generator's
``--crm-shape bench``). A third of the visitors call (``--call-share``), not the demo's 64 %, which
would give twice as many Tasks for the same page views.

Each phase runs in its own process so its peak memory (max RSS) is measured on its own. The build
and the floor are timed ``--repeat`` times each (default 3), alternately (build, floor, build,
floor, ...), each build on a new warehouse: these machines vary by 10 to 30 % from one minute to
the next, and alternating puts both measurements through the same slow and fast spells. The
reported build and floor seconds are the medians of their runs, and ``ratio`` is the median build
over the median floor; every run is printed. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def phase(name: str, cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd``; return (seconds, peak RSS in MB of that process tree's largest process)."""
    print(f"== {name}: {' '.join(cmd[:3])} ...", flush=True)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed (exit {os.waitstatus_to_exitcode(status)})")
    return seconds, usage.ru_maxrss / 1024


def isolated(fn, *args):
    """``fn(*args)`` in a child process: a child started by this process reports this process's
    peak memory as its own (Linux carries it over the fork), so the bench's own work that holds
    much (the row comparisons, reading the landing files) stays out of the phases it measures."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        stopped, value = pool.apply(_stop_as_value, (fn, *args))
    if stopped:
        raise SystemExit(value)
    return value


def _stop_as_value(fn, *args):
    """A pool's worker dies on SystemExit (the checks' way to stop the bench): returned instead."""
    try:
        return False, fn(*args)
    except SystemExit as stop:
        return True, stop.code


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def transform_timings(airflow_db: Path) -> tuple[float, float]:
    """(the last calltrail_transform run, its dbt tasks from the first start to the last end), as
    Airflow recorded them in its metadata database."""
    con = sqlite3.connect(airflow_db)
    try:
        run_id, start, end = con.execute(
            "select run_id, start_date, end_date from dag_run where dag_id = 'calltrail_transform' "
            "and state = 'success' order by start_date desc limit 1").fetchone()
        first, last = con.execute(
            "select min(start_date), max(end_date) from task_instance where dag_id = 'calltrail_transform' "
            "and run_id = ? and task_id like 'dbt.%'", (run_id,)).fetchone()
    finally:
        con.close()
    return _seconds(start, end), _seconds(first, last)


def demo(data: Path, repeat: int) -> dict[str, float]:
    """``make run`` from clean data (the virtual environment built), then a plain ``dbt build`` of
    the nodes the transformation DAG builds (seeds, models, data tests; no unit tests) on the lake
    that run wrote, into an empty warehouse; ``repeat`` times, alternately; medians."""
    env = {**os.environ, "CALLTRAIL_DATA_DIR": str(data), "AIRFLOW_HOME": str(data / "airflow")}
    for key in [k for k in env if k.startswith(("CALLTRAIL_", "AIRFLOW__"))]:
        if key != "CALLTRAIL_DATA_DIR":
            env.pop(key)
    from calltrail import settings as settings_module
    from calltrail.transform.dbt import BUILD_ARGS, dbt_env, project_args

    plain_env = {**env, "CALLTRAIL_WAREHOUSE": str(data / "plain" / "calltrail.duckdb")}
    plain = settings_module.load(plain_env)
    plain_env.update(dbt_env(plain))
    runs: list[float] = []
    dags: list[float] = []
    dbt_tasks: list[float] = []
    builds: list[float] = []
    for run in range(1, repeat + 1):
        of = f"{run} of {repeat}"
        subprocess.run(["rm", "-rf", str(data)], check=True)
        data.mkdir(parents=True)
        with (data.parent / f"{data.name}-run.log").open("w") as log:
            print(f"== demo: make run from clean data, run {of} ...", flush=True)
            started = time.perf_counter()
            rc = subprocess.run([str(BIN / "calltrail"), "run"], env=env, cwd=ROOT, stdout=log,
                                stderr=subprocess.STDOUT, check=False).returncode
            runs.append(time.perf_counter() - started)
        if rc != 0:
            raise SystemExit(f"make run failed (exit {rc}): see {log.name}")
        dag_s, tasks_s = transform_timings(data / "airflow" / "airflow.db")
        dags.append(dag_s)
        dbt_tasks.append(tasks_s)
        # Not timed: the parse, as `calltrail setup` does before the DAG's tasks.
        phase("dbt parse (not timed)", [str(BIN / "dbt"), "parse", *project_args(plain)], plain_env)
        plain.warehouse.parent.mkdir(parents=True)
        build_s, _ = phase(f"plain dbt build of the same nodes, run {of}",
                           [str(BIN / "dbt"), *BUILD_ARGS, *project_args(plain)],
                           plain_env)
        builds.append(build_s)
        print(f"   run {of}: make run {runs[-1]:.1f} s, transform DAG {dag_s:.1f} s, its dbt tasks {tasks_s:.1f} s, "
              f"plain dbt build {build_s:.1f} s, ratio {dag_s / build_s:.2f}", flush=True)
    dag_s, tasks_s, build_s = statistics.median(dags), statistics.median(dbt_tasks), statistics.median(builds)
    return {"demo_run_seconds": round(statistics.median(runs), 1),
            "transform_dag_seconds": round(dag_s, 1),
            "dbt_tasks_seconds": round(tasks_s, 1), "plain_dbt_build_seconds": round(build_s, 1),
            "orchestration_ratio": round(dag_s / build_s, 2), "dbt_tasks_ratio": round(tasks_s / build_s, 2)}


def node_timings(run_results: Path) -> dict[str, float]:
    """Each node's execution time (s) in the dbt command that wrote ``run_results``."""
    results = json.loads(run_results.read_text())["results"]
    return {r["unique_id"].split(".")[-1]: r["execution_time"] for r in results}


def check_floor(warehouse: Path, floor_db: Path) -> dict[str, int]:
    """Not timed: the floor's call matches and attribution rows against the last build's
    (``except all`` both ways, every column); stops the bench when they differ. Returns the build's
    object counts."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute(f"attach '{floor_db}' as floor (read_only)")

        def relation(name: str) -> str:
            schema = con.execute("select table_schema from information_schema.tables where table_catalog = "
                                 "current_database() and table_name = ?", [name]).fetchone()
            if schema is None:
                raise SystemExit(f"the build wrote no {name}")
            return f'"{schema[0]}"."{name}"'

        pairs = {
            "call matches": (f"select task_id, match_status from {relation('int_calls_matched_to_sessions')}",
                             "select task_id, match_status from floor.floor_matches"),
            "attribution": (
                "select opportunity_id, touchpoint_id, person_id, opportunity_positions, model, credit, "
                f"attributed_amount, currency_iso_code from {relation('fct_attribution')}",
                "select opportunity_id, touchpoint_id, person_id, opportunity_positions, model, credit, "
                "attributed_amount, currency_iso_code from floor.floor_attribution"),
        }
        for name, (build, floor) in pairs.items():
            only_build = con.execute(f"select count(*) from ({build} except all {floor})").fetchone()[0]
            only_floor = con.execute(f"select count(*) from ({floor} except all {build})").fetchone()[0]
            if only_build or only_floor:
                raise SystemExit(f"the floor's {name} differ from the build's: {only_build} rows only in the "
                                 f"build, {only_floor} only in the floor")
            print(f"   floor and build agree on the {name}", flush=True)
        count = lambda name: con.execute(f"select count(*) from {relation(name)}").fetchone()[0]  # noqa: E731
        return {"people": count("dim_people"), "opportunities": count("stg_salesforce__opportunities"),
                "contact_roles": count("stg_salesforce__opportunity_contact_roles"),
                "attribution_rows": count("fct_attribution")}
    finally:
        con.close()


INGEST_CODE = (
    "from calltrail import settings; from calltrail.tasks import ingest; s = settings.load(); "
    "ingest.ingest_web_events(s); ingest.ingest_task_files(s); "
    "[ingest.ingest_salesforce_files(s, o) for o in ('lead', 'contact', 'opportunity', 'opportunity_contact_role')]"
)


INCREMENT_FILES = ("bench-increment.jsonl", "bench-increment-tasks.jsonl")
NEWEST_FILES = ("bench-newest.jsonl", "bench-newest-tasks.jsonl")


def write_increment(settings, every: int = 100) -> tuple[int, int]:
    """Landing files of one more load: every ``every``-th web event of the landing files again, an
    hour later under a new event id, and every ``every``-th Task again as a new version a day later
    (its visitors are rebuilt). Returns the events and Task versions written."""
    events = _web_events(settings, INCREMENT_FILES[0], "increment", lambda n, _: n % every == 0, timedelta(hours=1))
    tasks = _task_versions(settings, INCREMENT_FILES[1], lambda n, _: n % every == 0, timedelta(days=1))
    return events, tasks


def _demo_web_event_files(settings) -> list[Path]:
    """The demo's web event landing files, in order."""
    return sorted(settings.web_landing_dir.glob("demo-web-events-*.jsonl"))


def _web_events(settings, name: str, suffix: str, keep, shift) -> int:
    """The web events of the demo's landing files that ``keep(line number in its file, line)``
    keeps, again ``shift`` later under their event id and ``-suffix``, into the landing file
    ``name``. Returns how many."""
    events = 0
    with (settings.web_landing_dir / name).open("w") as out:
        for path in _demo_web_event_files(settings):
            with path.open() as fh:
                for n, line in enumerate(fh):
                    if not keep(n, line):
                        continue
                    row = json.loads(line)
                    row["event_id"] = f"{row['event_id']}-{suffix}"
                    at = datetime.fromisoformat(row["occurred_at"].replace("Z", "+00:00")) + shift
                    row["occurred_at"] = at.isoformat()
                    out.write(json.dumps(row) + "\n")
                    events += 1
    return events


def _task_versions(settings, name: str, keep, shift) -> int:
    """The Tasks of the demo's Task file that ``keep(line number, SystemModstamp)`` keeps, again as
    new versions ``shift`` later, into the landing file ``name``. Returns how many."""
    tasks = 0
    with (settings.task_landing_dir / "demo-tasks.jsonl").open() as fh, \
            (settings.task_landing_dir / name).open("w") as out:
        for n, line in enumerate(fh):
            row = json.loads(line)
            if not keep(n, row["SystemModstamp"]):
                continue
            stamp = datetime.strptime(row["SystemModstamp"], "%Y-%m-%dT%H:%M:%S.%f%z") + shift
            row["SystemModstamp"] = stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
            out.write(json.dumps(row) + "\n")
            tasks += 1
    return tasks


def write_newest(settings, share: float = 0.01) -> tuple[int, int]:
    """Landing files of the next stretch of time: the newest ``share`` of the web events (by time)
    again, moved past the history's end by as long as they span, under new event ids, and the
    newest ``share`` of the Tasks (by SystemModstamp) again as new versions moved as far. The
    visitors are those active at the end of the history, as in an hourly load. Returns the events
    and Task versions written."""
    key = '"occurred_at":"'

    def occurred(line: str) -> str:
        at = line.index(key) + len(key)
        return line[at:at + 19]

    stamps = sorted(occurred(line) for path in _demo_web_event_files(settings) for line in path.open())
    cut = stamps[int(len(stamps) * (1 - share))]
    shift = datetime.fromisoformat(stamps[-1]) - datetime.fromisoformat(cut)
    del stamps
    events = _web_events(settings, NEWEST_FILES[0], "newest", lambda _, line: occurred(line) >= cut, shift)
    with (settings.task_landing_dir / "demo-tasks.jsonl").open() as fh:
        modstamps = sorted(json.loads(line)["SystemModstamp"] for line in fh)
    task_cut = modstamps[int(len(modstamps) * (1 - share))]
    del modstamps
    tasks = _task_versions(settings, NEWEST_FILES[1], lambda _, stamp: stamp >= task_cut, shift)
    return events, tasks


def build_from_scratch(name: str, build_cmd: list[str], env: dict[str, str], warehouse: Path) -> None:
    """``build_cmd`` into an empty ``warehouse`` (its folder made anew), with a dbt target folder
    of its own beside it: dbt drops its partial parse when the environment changes, and the timed
    builds would parse the project again (about 6 s)."""
    subprocess.run(["rm", "-rf", str(warehouse.parent)], check=True)
    warehouse.parent.mkdir(parents=True)
    phase(name, build_cmd, {**env, "CALLTRAIL_WAREHOUSE": str(warehouse),
                            "DBT_TARGET_PATH": str(warehouse.parent / "target")})


def compare_incremental(incremental: Path, full: Path) -> None:
    """The incremental models of two warehouses, row for row (``except all`` both ways); stops the
    bench when one differs."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"attach '{incremental}' as inc (read_only true); attach '{full}' as rebuilt (read_only true)")
    for model in INCREMENTAL_MODELS:
        differ = con.execute(f"select (select count(*) from (select * from inc.main.{model} except all "
                             f"select * from rebuilt.main.{model})) + (select count(*) from (select * from "
                             f"rebuilt.main.{model} except all select * from inc.main.{model}))").fetchone()[0]
        if differ:
            raise SystemExit(f"{model}: the incremental build differs from a full build in {differ} rows")
    con.close()


def spark(data: Path, visitors: int, call_share: float, repeat: int) -> dict[str, float]:
    """The dbt build on Spark (the session method, local[*]) and on DuckDB, of one smaller lake
    (``--spark-visitors``, default about a million page views): what the distributed engine costs on
    this one machine. Each build starts from an empty warehouse; Spark's includes starting its JVM
    and making the lake's views. Medians of ``repeat`` runs of each, alternately. Then, once on
    each engine, an incremental build after the newest 1 % of the events and Tasks."""
    from calltrail import settings as settings_module
    from calltrail.transform.dbt import dbt_env, project_args

    env = {**os.environ, "CALLTRAIL_DATA_DIR": str(data), "AIRFLOW_HOME": str(data / "airflow")}
    for key in [k for k in env if k.startswith("CALLTRAIL_") and k != "CALLTRAIL_DATA_DIR"]:
        env.pop(key)
    # Each engine its own dbt target folder: dbt drops its partial parse when the target changes,
    # and each build would otherwise parse the project again after the other engine's.
    duck = settings_module.load({**env, "CALLTRAIL_DBT_TARGET_DIR": str(data / "target-duckdb")})
    spark_env = {**env, "CALLTRAIL_DBT_TARGET": "spark", "CALLTRAIL_DBT_TARGET_DIR": str(data / "target-spark")}
    on_spark = settings_module.load(spark_env)
    t, _ = phase("spark part: generate", [str(BIN / "calltrail"), "demo", "--visitors", str(visitors),
                                          "--call-share", str(call_share), "--crm-shape", "bench"], env)
    truth = json.loads((duck.landing_dir / "_demo" / "truth.json").read_text())
    subprocess.run(["rm", "-rf", str(duck.lake_dir)], check=True)
    phase("spark part: ingest", [sys.executable, "-c", INGEST_CODE], env)
    duck_env, spark_denv = {**env, **dbt_env(duck)}, {**spark_env, **dbt_env(on_spark)}
    kinds = ["--resource-type", "seed", "--resource-type", "model"]
    phase("spark part: dbt parse (not timed)", [str(BIN / "dbt"), "parse", *project_args(duck)], duck_env)
    phase("spark part: dbt parse for Spark (not timed)", [str(BIN / "dbt"), "parse", *project_args(on_spark)],
          spark_denv)
    # As the transformation DAG does on this target: the lake's views (its first task), then the build.
    spark_code = (
        "from calltrail import settings; from calltrail.tasks.transform import register_lake_on_spark; "
        "from calltrail.transform.dbt import run_dbt; s = settings.load(); register_lake_on_spark(s); "
        f"run_dbt(s, ['build', {', '.join(repr(k) for k in kinds)}], in_process=True)"
    )
    duck_runs, spark_runs = [], []
    for run in range(1, repeat + 1):
        subprocess.run(["rm", "-rf", str(duck.warehouse.parent)], check=True)
        duck.warehouse.parent.mkdir(parents=True)
        duck_runs.append(phase(f"spark part: dbt build on DuckDB, run {run} of {repeat}",
                               [str(BIN / "dbt"), "build", *kinds, *project_args(duck)], duck_env)[0])
        subprocess.run(["rm", "-rf", str(on_spark.spark_warehouse_dir)], check=True)
        spark_runs.append(phase(f"spark part: dbt build on Spark, run {run} of {repeat}",
                                [sys.executable, "-c", spark_code], spark_denv)[0])
        print(f"   run {run} of {repeat}: DuckDB {duck_runs[-1]:.1f} s, Spark {spark_runs[-1]:.1f} s", flush=True)
    duck_s, spark_s = statistics.median(duck_runs), statistics.median(spark_runs)

    # The next stretch of time (the newest 1 % again, as the main part's last incremental build),
    # built incrementally on each engine's last build, once; then checked (not timed): DuckDB's
    # against a build of the same lake from scratch, Spark's against DuckDB's, row for row.
    try:
        newest_events, newest_tasks = isolated(write_newest, duck)
        print(f"spark part: increment of {newest_events:,} events and {newest_tasks:,} Task versions", flush=True)
        phase("spark part: ingest the increment (not timed)", [sys.executable, "-c", INGEST_CODE],
              {**env, "CALLTRAIL_DEMO": "always"})
        duck_inc_s, _ = phase("spark part: dbt build on DuckDB, incremental",
                              [str(BIN / "dbt"), "build", *kinds, *project_args(duck)], duck_env)
        spark_inc_s, _ = phase("spark part: dbt build on Spark, incremental", [sys.executable, "-c", spark_code],
                               spark_denv)
    finally:
        (duck.web_landing_dir / NEWEST_FILES[0]).unlink(missing_ok=True)
        (duck.task_landing_dir / NEWEST_FILES[1]).unlink(missing_ok=True)
    print(f"   incremental: DuckDB {duck_inc_s:.1f} s, Spark {spark_inc_s:.1f} s", flush=True)
    full_warehouse = data / "full-refresh" / "calltrail.duckdb"
    build_from_scratch("spark part: dbt build of the same lake from scratch on DuckDB (not timed)",
                       [str(BIN / "dbt"), "build", *kinds, *project_args(duck)], duck_env, full_warehouse)
    isolated(compare_incremental, duck.warehouse, full_warehouse)
    dumped = data / "spark-incremental"
    subprocess.run(["rm", "-rf", str(dumped)], check=True)
    phase("spark part: Spark's incremental models as Parquet (not timed)",
          [sys.executable, "-c", SPARK_DUMP_CODE, str(dumped)], spark_denv)
    isolated(compare_engines, duck.warehouse, dumped)
    print("   Spark's incremental build equals DuckDB's, and DuckDB's a build from scratch", flush=True)
    return {"spark_events": truth["web_events_valid"], "spark_seconds": round(spark_s, 2),
            "spark_duckdb_seconds": round(duck_s, 2), "spark_ratio": round(spark_s / duck_s, 2),
            "spark_incremental_events": newest_events, "spark_incremental_tasks": newest_tasks,
            "spark_incremental_seconds": round(spark_inc_s, 2),
            "spark_incremental_ratio": round(spark_inc_s / spark_s, 3),
            "spark_incremental_duckdb_seconds": round(duck_inc_s, 2),
            "spark_incremental_duckdb_ratio": round(duck_inc_s / duck_s, 3)}


INCREMENTAL_MODELS = ("stg_salesforce__tasks", "int_sessions", "int_calls_matched_to_sessions", "int_conversions",
                      "fct_touchpoints", "fct_attribution")

# Run with the spark target's environment: each incremental model of Spark's build into ``argv[1]``
# as Parquet, without the partition columns Spark adds, as the Spark tests dump theirs.
SPARK_DUMP_CODE = (
    "import sys, pathlib; from calltrail import settings; from calltrail.warehouse.target import open_warehouse; "
    "from tests.transform.spark_dump import dump_models; s = settings.load(); con = open_warehouse(s); "
    f"dump_models(s, con, {INCREMENTAL_MODELS!r}, pathlib.Path(sys.argv[1])); con.close()"
)


def compare_engines(warehouse: Path, dumped: Path) -> None:
    """The incremental models of a DuckDB warehouse against Spark's (Parquet files in ``dumped``),
    row for row, with the values as both engines must give them (tests/transform/engine_compare.py);
    stops the bench when one differs."""
    from tests.transform.engine_compare import assert_same_rows, rows_duckdb, rows_parquet

    for model in INCREMENTAL_MODELS:
        try:
            assert_same_rows(model, rows_duckdb(warehouse, model), rows_parquet(dumped / f"{model}.parquet"), "Spark")
        except AssertionError as differ:
            raise SystemExit(f"{model}: Spark's incremental build differs from DuckDB's: {differ}") from None


def small(data: Path, visitors: int, call_share: float) -> dict[str, float]:
    """The incremental builds' fixed cost: this bench, once, on a lake of ``visitors`` (a few thousand
    events), where the models have almost nothing to do. What remains is dbt's start and end, its
    per-node statements and DuckDB's checkpoint: the least an incremental build costs on this machine
    whatever the load. Its output goes to ``<data dir>-run.log``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--visitors", str(visitors), "--call-share", str(call_share),
           "--data-dir", str(data), "--repeat", "1", "--keep", "--no-demo", "--no-spark", "--no-small"]
    log_path = data.parent / f"{data.name}-run.log"
    data.parent.mkdir(parents=True, exist_ok=True)
    print(f"== small lake ({visitors:,} visitors): the incremental builds' fixed cost; log: {log_path}", flush=True)
    with log_path.open("w") as log:
        rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
    if rc != 0:
        raise SystemExit(f"the small-lake bench failed (exit {rc}): see {log_path}")
    found = json.loads(log_path.read_text().strip().splitlines()[-1])
    print(f"   small lake: {found['events']:,} events, full build {found['build_seconds']:.1f} s, incremental "
          f"{found['incremental_seconds']:.1f} s (late data), {found['incremental_noop_seconds']:.1f} s (nothing new), "
          f"{found['incremental_newest_seconds']:.1f} s (the newest 1 %)", flush=True)
    return {f"small_{key}": found[key] for key in ("events", "build_seconds", "incremental_seconds",
                                                   "incremental_noop_seconds", "incremental_newest_seconds")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visitors", type=int, default=2_300_000,
                        help="visitors to generate (default: about 10 million page views)")
    parser.add_argument("--call-share", type=float, default=0.33,
                        help="share of visitors who call (default 0.33: about a million Tasks)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "bench")
    parser.add_argument("--demo-only", action="store_true",
                        help="only the demo part: make run from clean data and the orchestration ratio")
    parser.add_argument("--no-demo", action="store_true", help="leave out the demo part")
    parser.add_argument("--spark-visitors", type=int, default=230_000,
                        help="visitors of the Spark part's lake (default: about a million page views)")
    parser.add_argument("--no-spark", action="store_true", help="leave out the Spark part")
    parser.add_argument("--spark-only", action="store_true", help="only the Spark part")
    parser.add_argument("--spark-data-dir", type=Path, default=ROOT / "data" / "bench-spark")
    parser.add_argument("--small-visitors", type=int, default=2_000,
                        help="visitors of the small lake that gives the incremental builds' fixed cost (default 2,000)")
    parser.add_argument("--no-small", action="store_true", help="leave out the small lake")
    parser.add_argument("--small-data-dir", type=Path, default=ROOT / "data" / "bench-small")
    parser.add_argument("--demo-data-dir", type=Path, default=ROOT / "data" / "bench-demo")
    parser.add_argument("--keep", action="store_true", help="reuse generated landing files of the same size")
    parser.add_argument("--repeat", type=int, default=3,
                        help="times the build and the floor are each run, alternately (default 3; medians are reported)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]  # calltrail; the engine comparison of tests/
    if args.demo_only:
        print(json.dumps(demo(args.demo_data_dir.resolve(), args.repeat)))
        return 0
    if args.spark_only:
        print(json.dumps(spark(args.spark_data_dir.resolve(), args.spark_visitors, args.call_share, args.repeat)))
        return 0
    data = args.data_dir.resolve()
    env = {**os.environ, "CALLTRAIL_DATA_DIR": str(data), "AIRFLOW_HOME": str(data / "airflow")}
    for key in ("CALLTRAIL_LANDING_DIR", "CALLTRAIL_LAKE_DIR", "CALLTRAIL_WAREHOUSE", "CALLTRAIL_DBT_DOCS_DIR"):
        env.pop(key, None)
    from calltrail import settings as settings_module
    from calltrail.dbt_project import project_var
    from calltrail.lake.layout import (
        CONTACTS,
        LEADS,
        OPPORTUNITIES,
        OPPORTUNITY_CONTACT_ROLES,
        SALESFORCE_TASK_GLOB,
        WEB_EVENTS_GLOB,
    )
    from calltrail.transform.dbt import dbt_env, project_args

    settings = settings_module.load(env)
    truth_file = settings.landing_dir / "_demo" / "truth.json"
    wanted = {"visitors": args.visitors, "call_share": args.call_share, "crm_shape": "bench"}
    generated = json.loads(truth_file.read_text()) if truth_file.exists() else {}
    size_ok = all(generated.get(k, "demo") == v for k, v in wanted.items())
    if not (args.keep and size_ok):
        # The bench's proportions of people and deals (crm.SHAPES); the people's truth (the
        # attribution oracle) is left out above 250,000 visitors: the floor is checked against the
        # build instead.
        t, _ = phase("generate", [str(BIN / "calltrail"), "demo", "--visitors", str(args.visitors),
                                  "--call-share", str(args.call_share), "--crm-shape", "bench"], env)
        print(f"   generated in {t:.1f} s", flush=True)
    truth = json.loads(truth_file.read_text())
    subprocess.run(["rm", "-rf", str(settings.lake_dir)], check=True)

    ingest_s, ingest_mb = phase("ingest", [sys.executable, "-c", INGEST_CODE], env)

    denv = {**env, **dbt_env(settings)}
    dbt_settings = project_args(settings)
    build_cmd = [str(BIN / "dbt"), "build", "--resource-type", "seed", "--resource-type", "model", *dbt_settings]
    floor_db = data / "floor.duckdb"
    # The floor's variables: the lake's globs, and the rule values and Task fields the dbt build uses.
    floor_vars = {
        "web_glob": str(settings.lake_dir / WEB_EVENTS_GLOB),
        "task_glob": str(settings.lake_dir / SALESFORCE_TASK_GLOB),
        "inactivity_minutes": project_var("calltrail__session_inactivity_minutes"),
        "call_window_minutes": project_var("calltrail__call_window_minutes"),
        "bizible_id_field": settings.salesforce.bizible_id_field,
        "touchpoint_date_field": settings.salesforce.touchpoint_date_field,
        "lead_glob": str(settings.lake_dir / LEADS.glob),
        "contact_glob": str(settings.lake_dir / CONTACTS.glob),
        "opportunity_glob": str(settings.lake_dir / OPPORTUNITIES.glob),
        "role_glob": str(settings.lake_dir / OPPORTUNITY_CONTACT_ROLES.glob),
        "custom_weights_csv": str(ROOT / "dbt_project" / "seeds" / "attribution_custom_weights.csv"),
        "default_currency": project_var("calltrail__default_currency"),
        "people_fallback": project_var("calltrail__opportunity_people_fallback"),
    }
    if project_var("calltrail__call_window_anchor") != "session_start" or len(
            project_var("calltrail__attribution_models")) != 6:
        raise SystemExit("the floor computes the call window from the session start and the six shipped models")
    floor_code = (
        "import duckdb, json, sys, pathlib; con = duckdb.connect(sys.argv[1]); "
        "[con.execute(f'set variable {k} = ?', [v]) for k, v in json.loads(sys.argv[2]).items()]; "
        "con.execute(pathlib.Path(sys.argv[3]).read_text()); "
        "print(con.execute('select match_status, count(*) from floor_matches group by 1 order by 1').fetchall()); "
        "print(con.execute('select count(*) from floor_attribution').fetchall())"
    )
    floor_cmd = [sys.executable, "-c", floor_code, str(floor_db), json.dumps(floor_vars),
                 str(ROOT / "bench" / "floor.sql")]

    # Not timed: the project is parsed first with the same settings, as `calltrail setup` does for
    # Airflow, so that the timed builds measure the models rather than a full parse (dbt discards
    # its partial parse whenever the vars or the profile's environment differ from the last run).
    phase("dbt parse (not timed)", [str(BIN / "dbt"), "parse", *dbt_settings], denv)
    builds: list[tuple[float, float]] = []
    floors: list[tuple[float, float]] = []
    # Each build's time per node; int_sessions holds the channel step: the channel rules and the
    # referrer hosts, looked up once per distinct value (docs/rules.md, Marketing channels).
    node_runs: list[dict[str, float]] = []
    for run in range(1, args.repeat + 1):
        of = f"{run} of {args.repeat}"
        # Every build starts from an empty warehouse.
        subprocess.run(["rm", "-rf", str(settings.warehouse.parent)], check=True)
        settings.warehouse.parent.mkdir(parents=True)
        builds.append(phase(f"dbt build (seeds and models), run {of}", build_cmd, denv))
        node_runs.append(node_timings(settings.dbt_target_dir / "run_results.json"))
        floor_db.unlink(missing_ok=True)
        floors.append(phase(f"floor (one DuckDB script), run {of}", floor_cmd, env))
        print(f"   run {of}: build {builds[-1][0]:.1f} s, floor {floors[-1][0]:.1f} s, "
              f"ratio {builds[-1][0] / floors[-1][0]:.2f}", flush=True)
        if run == 1:  # not timed; stops here when they differ
            counts = isolated(check_floor, settings.warehouse, floor_db)

    validate_code = (
        "from calltrail import settings; from calltrail.tasks import quality; "
        "from calltrail.airflow.run_context import RunInfo; s = settings.load(); "
        "r = quality.audit(s, RunInfo('bench', 'bench')); print({k: r[k] for k in ('checks', 'warnings', 'errors')})"
    )
    validate_s, validate_mb = phase("validate", [sys.executable, "-c", validate_code], env)
    # The report page from the build's marts (what publish copies), into the bench's own folder.
    report_code = (
        "from calltrail import settings; from calltrail.report import page; "
        "s = settings.load(); "
        "w = page.write(s, schema=s.build_schema); print(f'report page: {w.bytes:,} bytes')"
    )
    report_dir = data / "report"
    report_s, report_mb = phase("report page", [sys.executable, "-c", report_code],
                                {**env, "CALLTRAIL_REPORT_DIR": str(report_dir)})
    report_bytes = sum(f.stat().st_size for f in report_dir.rglob("*") if f.is_file())

    # The channel step alone (dbt_project/analyses/bench_channel_step.sql) on the built sessions'
    # signatures plus made-up referrer hosts: the generated data has only a handful of hosts.
    phase("dbt compile of the channel step (not timed)",
          [str(BIN / "dbt"), "compile", "--select", "bench_channel_step", *dbt_settings], denv)
    compiled = ROOT / "dbt_project" / "target" / "compiled" / "calltrail" / "analyses" / "bench_channel_step.sql"
    channel_code = (
        "import duckdb, json, statistics, sys, time; con = duckdb.connect(sys.argv[1], read_only=True); "
        "sql = open(sys.argv[2]).read(); runs = []; row = None\n"
        "for _ in range(3):\n"
        "    t = time.perf_counter(); row = con.execute(sql).fetchone(); runs.append(time.perf_counter() - t)\n"
        "print(json.dumps({'seconds': statistics.median(runs), 'runs': runs, 'hosts': row[1]}))"
    )
    channel_out = subprocess.run([sys.executable, "-c", channel_code, str(settings.warehouse), str(compiled)],
                                 env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    channel = json.loads(channel_out.strip().splitlines()[-1])
    print(f"channel step: {channel['hosts']:,} distinct referrer hosts, median {channel['seconds']:.2f} s "
          f"({', '.join(f'{t:.2f}' for t in channel['runs'])})", flush=True)

    build_s = statistics.median(t for t, _ in builds)
    floor_s = statistics.median(t for t, _ in floors)

    # The incremental builds, each on the last build's warehouse (docs/incremental.md), each checked
    # (not timed) against a full build of the same lake:
    # - late data: 1 % more events and Tasks spread over the whole history;
    # - nothing new: the same command again;
    # - the next stretch of time: the newest 1 % of the events and Tasks again, past the history's end.
    full_warehouse = data / "full-refresh" / "calltrail.duckdb"

    def incremental(label: str, lake_changed: bool = True) -> tuple[float, float]:
        seconds, mb = phase(f"dbt build, incremental ({label})", build_cmd, denv)
        nodes = node_timings(settings.dbt_target_dir / "run_results.json")
        print("slowest nodes of the incremental build (s): " + ", ".join(
            f"{name} {t:.1f}" for name, t in sorted(nodes.items(), key=lambda kv: -kv[1])[:10]))
        if lake_changed:  # otherwise the last full build is of the same lake
            build_from_scratch("dbt build of the same lake from scratch (not timed)", build_cmd, denv, full_warehouse)
        isolated(compare_incremental, settings.warehouse, full_warehouse)
        return seconds, mb

    def ingest_increment(events: int, tasks: int) -> None:
        print(f"increment: {events:,} events and {tasks:,} Task versions", flush=True)
        # CALLTRAIL_DEMO=always: the increment is more of the demo's data, not a user's files to keep apart
        phase("ingest the increment (not timed)", [sys.executable, "-c", INGEST_CODE],
              {**env, "CALLTRAIL_DEMO": "always"})

    try:
        added_events, added_tasks = isolated(write_increment, settings)
        ingest_increment(added_events, added_tasks)
        incremental_s, incremental_mb = incremental("1 % late data")
        noop_s, _ = incremental("nothing new", lake_changed=False)
        newest_events, newest_tasks = isolated(write_newest, settings)
        ingest_increment(newest_events, newest_tasks)
        newest_s, newest_mb = incremental("the newest 1 %")
    finally:
        # the next run of the bench starts without the increments
        for web_name, task_name in (INCREMENT_FILES, NEWEST_FILES):
            (settings.web_landing_dir / web_name).unlink(missing_ok=True)
            (settings.task_landing_dir / task_name).unlink(missing_ok=True)
    build_mb = max(mb for _, mb in builds)
    floor_mb = max(mb for _, mb in floors)
    if args.repeat > 1:
        print(f"\nbuild runs (s): {', '.join(f'{t:.1f}' for t, _ in builds)}; "
              f"floor runs (s): {', '.join(f'{t:.1f}' for t, _ in floors)}; "
              f"per-run ratios: {', '.join(f'{b / f:.2f}' for (b, _), (f, _) in zip(builds, floors, strict=True))}")
        print("build and floor below: the medians of their runs; peak MB: the highest run")
    sessions_runs = [run["int_sessions"] for run in node_runs]
    slowest = sorted(node_runs[-1].items(), key=lambda kv: -kv[1])[:10]
    print("slowest nodes of the last build (s): " + ", ".join(f"{name} {t:.1f}" for name, t in slowest))
    events = truth["web_events_valid"]
    tasks = truth["task_records_written"] + truth["task_versions_in_updates"]
    rows = [("ingest", ingest_s, events + tasks, ingest_mb), ("dbt build", build_s, events + tasks, build_mb),
            ("validate", validate_s, None, validate_mb), ("floor", floor_s, events + tasks, floor_mb),
            ("report page", report_s, None, report_mb)]
    print(f"int_sessions (sessions and their channels), median of the builds: "
          f"{statistics.median(sessions_runs):.1f} s ({', '.join(f'{t:.1f}' for t in sessions_runs)})")
    print(f"\n{'phase':<12}{'seconds':>10}{'rows/s':>14}{'peak MB':>10}")
    for name, seconds, n, mb in rows:
        rate = f"{n / seconds:,.0f}" if n else "-"
        print(f"{name:<12}{seconds:>10.1f}{rate:>14}{mb:>10.0f}")
    result = {
        "events": events, "tasks": tasks, **counts,
        "ingest_seconds": round(ingest_s, 2), "build_seconds": round(build_s, 2),
        "validate_seconds": round(validate_s, 2), "floor_seconds": round(floor_s, 2),
        "ratio": round(build_s / floor_s, 2),
        "int_sessions_seconds": round(statistics.median(sessions_runs), 2),
        "channel_step_seconds": round(channel["seconds"], 2), "channel_step_hosts": channel["hosts"],
        "peak_rss_mb": round(max(ingest_mb, build_mb, validate_mb, floor_mb)),
        "report_seconds": round(report_s, 2), "report_mb": round(report_bytes / 1e6, 2),
        "report_peak_rss_mb": round(report_mb),
        "incremental_events": added_events, "incremental_tasks": added_tasks,
        "incremental_seconds": round(incremental_s, 2), "incremental_ratio": round(incremental_s / build_s, 3),
        "incremental_peak_rss_mb": round(incremental_mb),
        "incremental_noop_seconds": round(noop_s, 2), "incremental_noop_ratio": round(noop_s / build_s, 3),
        "incremental_newest_events": newest_events, "incremental_newest_tasks": newest_tasks,
        "incremental_newest_seconds": round(newest_s, 2),
        "incremental_newest_ratio": round(newest_s / build_s, 3),
        "incremental_newest_peak_rss_mb": round(newest_mb),
    }
    if not args.no_demo:
        result.update(demo(args.demo_data_dir.resolve(), args.repeat))
    if not args.no_spark:
        result.update(spark(args.spark_data_dir.resolve(), args.spark_visitors, args.call_share, args.repeat))
    if not args.no_small:
        fixed = small(args.small_data_dir.resolve(), args.small_visitors, args.call_share)
        # the share of this full build that an incremental build costs with almost nothing to do
        fixed["small_incremental_newest_ratio"] = round(fixed["small_incremental_newest_seconds"] / build_s, 3)
        result.update(fixed)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
