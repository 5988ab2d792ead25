"""A warehouse file DuckDB cannot open (``CALLTRAIL_WAREHOUSE`` pointing at another file, a file of
another DuckDB version, a damaged one): every command that reads it says so in one line, and the
file is left as it was."""

from pathlib import Path

import duckdb
import pytest

from calltrail.warehouse.duckdb_file import WarehouseUnreadable, connect
from tests.airflow_env import BIN, calltrail_env, run

NOT_DUCKDB = b"order_id,amount\n1,10.00\n"  # a CSV under the warehouse's name


def _bad_warehouse(tmp_path: Path) -> Path:
    warehouse = tmp_path / "data" / "warehouse" / "calltrail.duckdb"
    warehouse.parent.mkdir(parents=True)
    warehouse.write_bytes(NOT_DUCKDB)
    return warehouse


def test_connect_names_the_file_and_duckdbs_reason(tmp_path):
    warehouse = _bad_warehouse(tmp_path)
    for read_only in (True, False):
        with pytest.raises(WarehouseUnreadable) as error:
            connect(warehouse, read_only=read_only, wait_seconds=5)
        message = str(error.value)
        assert message.startswith(f"cannot open the warehouse {warehouse} (CALLTRAIL_WAREHOUSE) with DuckDB "
                                  f"{duckdb.__version__}: ")
        assert "not a valid DuckDB database file" in message and "\n" not in message
    assert warehouse.read_bytes() == NOT_DUCKDB


@pytest.mark.parametrize("command", [["summary"], ["summary", "--json"], ["report"],
                                     ["export", "fct_touchpoints", "--out", "OUT/touchpoints.csv"],
                                     ["export", "fct_touchpoints", "--out", "-"]])
def test_a_command_that_reads_it_says_so_in_one_line_and_leaves_it_as_it_was(tmp_path, command):
    warehouse = _bad_warehouse(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    command = [str(out_dir / "touchpoints.csv") if arg == "OUT/touchpoints.csv" else arg for arg in command]
    done = run([str(BIN / "calltrail"), *command], calltrail_env(tmp_path), timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    # export --out -: standard output is the file's, so the error goes to standard error
    said, other = (done.stderr, done.stdout) if command[-1] == "-" else (done.stdout, done.stderr)
    assert said.splitlines() == [
        f"calltrail {command[0]}: cannot open the warehouse {warehouse} (CALLTRAIL_WAREHOUSE) with DuckDB "
        f"{duckdb.__version__}: IO Error: The file \"{warehouse}\" exists, but it is not a valid DuckDB database "
        "file! The file is left as it is."], said
    assert "Traceback" not in other and (command[-1] != "-" or other == ""), other
    assert warehouse.read_bytes() == NOT_DUCKDB
    assert list(out_dir.iterdir()) == []
