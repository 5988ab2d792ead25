"""Landing file -> validated Parquet plus a quarantine file, in one in-memory DuckDB session.

Every landing route (web event files, Task files, Salesforce API pages spooled to JSON lines) goes
through :func:`convert`. Rows are read as text, checked against a :class:`Contract`, typed, and
split: valid rows to Parquet, invalid rows to a JSON-lines quarantine file with the reasons for
each row. Nothing is dropped silently and one bad row never fails the load. DuckDB does the work
vectorised and spills to disk, so memory stays bounded for large files.

This session is in-memory: ingestion never opens the warehouse file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa

from calltrail.settings import Settings

log = logging.getLogger(__name__)

Kind = Literal["text", "timestamp", "boolean", "integer", "date", "decimal"]
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}

# ISO 8601 date-time that ends in an explicit offset: Z, +hh, +hhmm or +hh:mm.
_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)? ?(Z|z|[+-]\d{2}(:?\d{2})?)$"
_DUCKDB_TYPES: dict[Kind, str] = {
    "text": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
    "integer": "BIGINT",
    "date": "DATE",
    "decimal": "DECIMAL(18,2)",  # Salesforce currency fields: currency(16,2)
}


DEFAULT_MEMORY_LIMIT = Settings.ingest_memory_limit  # CALLTRAIL_INGEST_MEMORY_LIMIT's default


class UnreadableFile(ValueError):
    """A landing file that cannot be read at all; it is quarantined whole."""


class UnsupportedFormat(ValueError):
    """A landing file whose extension calltrail does not read."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind = "text"
    required: bool = False


@dataclass(frozen=True)
class Check:
    """A row-level rule: ``sql`` is a DuckDB predicate over the text columns, true when the row is bad."""

    reason: str
    sql: str


@dataclass(frozen=True)
class Contract:
    dataset: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    case_insensitive_headers: bool = True

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def arrow_sql_types(self) -> dict[str, str]:
        return {c.name: _DUCKDB_TYPES[c.kind] for c in self.columns}


@dataclass
class ConvertResult:
    source: str
    rows_read: int = 0
    rows_valid: int = 0
    duplicates_in_file: int = 0
    duplicates_in_lake: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    unknown_columns: tuple[str, ...] = ()

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_valid": self.rows_valid,
            "duplicates_in_file": self.duplicates_in_file,
            "duplicates_in_lake": self.duplicates_in_lake,
            "rows_quarantined": self.rows_quarantined,
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
            "unknown_columns": list(self.unknown_columns),
        }


def detect_format(path: Path) -> str:
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise UnsupportedFormat(
            f"{path.name}: unsupported file type {path.suffix!r}; use one of {sorted(FORMATS)}"
        ) from None


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parquet_list(paths: list[Path]) -> str:
    """A SQL list of file paths for read_parquet([...])."""
    return "[" + ", ".join(_lit(str(p)) for p in paths) + "]"


def connect(spill_dir: Path, memory_limit: str = DEFAULT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An in-memory session that spills to ``spill_dir`` beyond ``memory_limit``."""
    con = duckdb.connect(":memory:")
    con.execute("set TimeZone = 'UTC'")
    con.execute(f"set memory_limit = {_lit(memory_limit)}")
    con.execute(f"set temp_directory = {_lit(str(spill_dir))}")
    con.execute("set preserve_insertion_order = true")
    con.execute("set enable_progress_bar = false")
    return con


def _load_jsonl(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract) -> tuple[str, ...]:
    con.execute(
        f"""
        create or replace temp table _lines as
        select row_number() over () as _row, line
        from read_csv({_lit(str(path))}, columns = {{'line': 'VARCHAR'}}, header = false,
                      delim = '\x1f', quote = '', escape = '', auto_detect = false,
                      null_padding = false)
        """
    )
    keys = _json_keys(con, contract)

    def extract(c: Column) -> str:
        # Salesforce answers with a field's canonical API name, whatever case the query used: match
        # keys ignoring case (when the contract does), and keep the value under the contract's name.
        variants = keys.get(c.name.lower(), [c.name]) if contract.case_insensitive_headers else [c.name]
        found = [f"json_extract_string(case when _ok then line else '{{}}' end, {_lit('$.' + json.dumps(v))})"
                 for v in variants]
        return (found[0] if len(found) == 1 else f"coalesce({', '.join(found)})") + f" as {_q(c.name)}"

    extracts = ", ".join(extract(c) for c in contract.columns)
    con.execute(
        f"""
        create or replace temp table _raw as
        with parsed as (
            select _row, line,
                   coalesce(case when json_valid(line) then json_type(line) end, '') = 'OBJECT' as _ok,
                   case when not json_valid(line) then 'invalid_json'
                        when json_type(line) <> 'OBJECT' then 'not_a_json_object' end as _parse_error
            from _lines
            where trim(line) <> ''
        )
        select _row, line as _record, _parse_error, {extracts} from parsed
        """
    )
    return ()


def _json_keys(con: duckdb.DuckDBPyConnection, contract: Contract) -> dict[str, list[str]]:
    """Lower-cased key -> the spellings the file's JSON objects use (exact contract name first)."""
    if not contract.case_insensitive_headers:
        return {}
    found = [row[0] for row in con.execute(
        "select distinct unnest(json_keys(line)) from _lines "
        "where json_valid(line) and json_type(line) = 'OBJECT'").fetchall()]
    exact = set(contract.names)
    keys: dict[str, list[str]] = {}
    for key in sorted(found, key=lambda k: (k not in exact, k)):
        keys.setdefault(key.lower(), []).append(key)
    return keys


def _map_columns(available: list[str], contract: Contract) -> tuple[dict[str, str], tuple[str, ...]]:
    """Contract column -> source column (case-insensitive when the contract allows), and unknowns."""
    if contract.case_insensitive_headers:
        lookup = {a.lower(): a for a in available}
        mapping = {c.name: lookup[c.name.lower()] for c in contract.columns if c.name.lower() in lookup}
        known = {c.name.lower() for c in contract.columns}
        unknown = tuple(a for a in available if a.lower() not in known and a.lower() != "attributes")
    else:
        mapping = {c.name: c.name for c in contract.columns if c.name in available}
        unknown = tuple(a for a in available if a not in mapping.values() and a != "attributes")
    return mapping, unknown


def _load_table(
    con: duckdb.DuckDBPyConnection,
    relation_sql: str,
    contract: Contract,
    *,
    row_sql: str = "row_number() over ()",
    record_sql: str = "to_json(_src) :: varchar",
    hidden: tuple[str, ...] = (),
) -> tuple[str, ...]:
    available = [r[0] for r in con.execute(f"describe select * from {relation_sql}").fetchall()]
    mapping, unknown = _map_columns([a for a in available if a not in hidden], contract)
    cols = ", ".join(
        f"nullif(cast({_q(mapping[c.name])} as varchar), '') as {_q(c.name)}"
        if c.name in mapping
        else f"cast(null as varchar) as {_q(c.name)}"
        for c in contract.columns
    )
    con.execute(
        f"""
        create or replace temp table _raw as
        select {row_sql} as _row, {record_sql} as _record, cast(null as varchar) as _parse_error, {cols}
        from {relation_sql} as _src
        """
    )
    return unknown


def _csv_text(row: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(row)
    return out.getvalue()


def _load_csv(
    con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, batch_rows: int = 100_000
) -> tuple[str, ...]:
    """CSV through Python's csv reader (any line endings, quoted newlines), streamed in batches.

    A line whose field count differs from the header's is quarantined with its line number.
    """
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise UnreadableFile(f"{path.name}: empty CSV file or no header line")
        seen: Counter[str] = Counter()
        names = []
        for name in header:  # make duplicate header names unique so no column is lost
            seen[name] += 1
            names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
        columns = ", ".join(f"{_q(n)} VARCHAR" for n in names)
        con.execute(f"create or replace temp table _csv (_line BIGINT, _text VARCHAR, {columns})")
        con.execute("create or replace temp table _csv_rejects (line BIGINT, reason VARCHAR, text VARCHAR)")
        batch: list[list[str]] = []
        lines: list[int] = []
        rejects: list[tuple[int, str, str]] = []

        def flush() -> None:
            if batch:
                arrays = [pa.array(lines, pa.int64()), pa.array([_csv_text(r) for r in batch], pa.string())]
                arrays += [pa.array([r[i] for r in batch], pa.string()) for i in range(len(names))]
                table = pa.Table.from_arrays(arrays, names=["_line", "_text", *names])
                con.register("_csv_batch", table)
                con.execute("insert into _csv select * from _csv_batch")
                con.unregister("_csv_batch")
                batch.clear()
                lines.clear()

        for row in reader:
            if not row:
                continue  # a blank line holds no record
            if len(row) != len(names):
                problem = "too many columns" if len(row) > len(names) else "too few columns"
                rejects.append((reader.line_num, f"malformed_csv_row: {problem}", _csv_text(row)))
                continue
            batch.append(row)
            lines.append(reader.line_num)
            if len(batch) >= batch_rows:
                flush()
        flush()
    unknown = _load_table(con, "_csv", contract, row_sql="_line", record_sql="_text", hidden=("_line", "_text"))
    if rejects:
        con.executemany("insert into _csv_rejects values (?, ?, ?)", rejects)
        nulls = ", ".join(f"cast(null as varchar) as {_q(c)}" for c in contract.names)
        con.execute(f"insert into _raw select line, text, reason, {nulls} from _csv_rejects")
    return unknown


def _load_parquet(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract) -> tuple[str, ...]:
    return _load_table(con, f"read_parquet({_lit(str(path))})", contract)


_LOADERS = {"jsonl": _load_jsonl, "csv": _load_csv, "parquet": _load_parquet}


def _reason_sql(contract: Contract) -> str:
    parts = ["_parse_error"]
    for c in contract.columns:
        col = _q(c.name)
        if c.required:
            parts.append(f"case when nullif(trim({col}), '') is null then 'missing_{c.name}' end")
        if c.kind == "timestamp":
            parts.append(
                f"case when {col} is not null and not regexp_matches(trim({col}), {_lit(_WITH_OFFSET)}) "
                f"then 'timestamp_without_offset:{c.name}' "
                f"when {col} is not null and try_cast(trim({col}) as timestamptz) is null "
                f"then 'invalid_timestamp:{c.name}' end"
            )
        elif c.kind == "boolean":
            parts.append(
                f"case when {col} is not null and lower(trim({col})) not in ('true', 'false', '1', '0') "
                f"then 'invalid_boolean:{c.name}' end"
            )
        elif c.kind == "integer":
            parts.append(
                f"case when {col} is not null and try_cast(trim({col}) as double) is null "
                f"then 'invalid_integer:{c.name}' end"
            )
        elif c.kind == "date":
            parts.append(
                f"case when {col} is not null and try_cast(trim({col}) as date) is null "
                f"then 'invalid_date:{c.name}' end"
            )
        elif c.kind == "decimal":
            parts.append(
                f"case when {col} is not null and try_cast(trim({col}) as decimal(18,2)) is null "
                f"then 'invalid_decimal:{c.name}' end"
            )
    parts += [f"case when {check.sql} then {_lit(check.reason)} end" for check in contract.checks]
    # Only the parse error counts for a line that could not be parsed at all.
    return f"case when _parse_error is not null then _parse_error else concat_ws(';', {', '.join(parts[1:])}) end"


def _typed_sql(c: Column) -> str:
    col = _q(c.name)
    if c.kind == "timestamp":
        return f"cast(trim({col}) as timestamptz) at time zone 'UTC' as {col}"
    if c.kind == "boolean":
        return f"coalesce(lower(trim({col})) in ('true', '1'), false) as {col}"
    if c.kind == "integer":
        return f"cast(round(cast(trim({col}) as double)) as bigint) as {col}"
    if c.kind == "date":
        return f"cast(trim({col}) as date) as {col}"
    if c.kind == "decimal":
        return f"cast(trim({col}) as decimal(18,2)) as {col}"
    return f"{col}"


LOADED_AT = "_loaded_at"


def _loaded_at_sql(loaded_at: datetime | None) -> str:
    at = (loaded_at or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
    return f"cast({_lit(at.isoformat(sep=' '))} as timestamp)"


def convert(
    source: Path,
    contract: Contract,
    parquet_out: Path,
    quarantine_out: Path,
    *,
    source_label: str | None = None,
    fmt: str | None = None,
    existing_keys: list[Path] | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    loaded_at: datetime | None = None,
    quarantine_named: Path | None = None,
) -> ConvertResult:
    """Validate ``source`` against ``contract``; write valid rows and the quarantine.

    ``quarantine_named``: where the quarantine will be once in place, when ``quarantine_out`` is a
    scratch file the caller moves there; the log names it.

    Every row written gets ``_loaded_at`` (``loaded_at``, default now, UTC): when it reached the
    lake. dbt source freshness measures the age of the newest one.

    ``existing_keys`` lists Parquet files already in the lake: rows whose key is there are
    counted as ``duplicates_in_lake`` and not written again.
    """
    label = source_label or source.name
    fmt = fmt or detect_format(source)
    result = ConvertResult(source=label)
    spill = parquet_out.parent / "_spill"
    con = connect(spill, memory_limit)
    try:
        result.unknown_columns = _LOADERS[fmt](con, source, contract)
        if result.unknown_columns:
            log.info("%s: ignoring columns not in the %s contract: %s", label, contract.dataset,
                     ", ".join(result.unknown_columns))
        con.execute(f"create or replace temp table _checked as select *, {_reason_sql(contract)} as _reason from _raw")
        result.rows_read = con.execute("select count(*) from _checked").fetchone()[0]

        key = ", ".join(_q(k) for k in contract.key)
        typed = ", ".join(_typed_sql(c) for c in contract.columns)
        # Each valid row is flagged once: a later copy of a key in this file, or a key the lake has.
        in_lake, seen_join = "false", ""
        if existing_keys:
            con.execute(f"create or replace temp table _seen as select distinct {key} "
                        f"from read_parquet({parquet_list(existing_keys)})")
            on = " and ".join(f"s.{_q(k)} = v.{_q(k)}" for k in contract.key)
            in_lake, seen_join = f"s.{_q(contract.key[0])} is not null", f"left join _seen s on {on}"
        con.execute(
            f"""
            create or replace temp table _valid as
            with v as (
                select {typed}, row_number() over (partition by {key} order by _row) as _copy
                from _checked where _reason = ''
            )
            select v.*, {in_lake} as _in_lake from v {seen_join}
            """
        )
        result.duplicates_in_file, result.duplicates_in_lake, result.rows_valid = (
            int(n or 0) for n in con.execute(
                "select sum(case when _copy > 1 then 1 else 0 end), "
                "sum(case when _copy = 1 and _in_lake then 1 else 0 end), "
                "sum(case when _copy = 1 and not _in_lake then 1 else 0 end) from _valid"
            ).fetchone()
        )
        names = ", ".join(_q(n) for n in contract.names)
        parquet_out.parent.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"copy (select {names}, {_loaded_at_sql(loaded_at)} as {LOADED_AT} "
            f"from _valid where _copy = 1 and not _in_lake order by {key}) "
            f"to {_lit(str(parquet_out))} (format parquet, compression zstd)"
        )

        for reason, count in con.execute(
            "select _reason, count(*) from _checked where _reason <> '' group by 1"
        ).fetchall():
            result.quarantined[reason] = count
        if result.quarantined:
            quarantine_out.parent.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"""
                copy (select {_lit(label)} as source_file, _row as row_number, _reason as reason,
                             _record as record
                      from _checked where _reason <> '' order by _row)
                to {_lit(str(quarantine_out))} (format json)
                """
            )
            log.warning("%s: %d row(s) quarantined in %s: %s", label, result.rows_quarantined,
                        quarantine_named or quarantine_out, dict(result.quarantined))
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return result
