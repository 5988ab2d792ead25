"""Opening the DuckDB warehouse, which one process at a time may hold.

DuckDB lets one process write the warehouse file, and while it does, no other process may open
it, not even to read; a process that has it open to read keeps every writer out in turn (several
readers may share it). Inside calltrail the one-slot Airflow pool ``calltrail_warehouse`` keeps
its own tasks apart, so the process in the way is usually someone else's: a DuckDB shell, a
notebook or a BI tool left open on the file.

Every open waits up to ``CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS`` for the file, then fails with
:class:`WarehouseLocked`, whose message names the file, the process that holds it (PID and command
line, as DuckDB reports it) and what to do. Waiting or failing never changes the file:
it keeps the tables of the last build that completed.

dbt opens the file itself, so before each dbt command (and each dbt task of the DAG)
:func:`wait_until_free` waits for it; a process that takes the file in the moment between is
reported from dbt's error the same way (:func:`locked_error`).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)

LOCK_ERROR = "Could not set lock on file"
_HOLDER = re.compile(r'Could not set lock on file "(?P<file>[^"]+)": Conflicting lock is held in '
                     r"(?P<program>.+?) \(PID (?P<pid>\d+)\)")


@dataclass(frozen=True)
class Holder:
    """The process DuckDB names as holding the file's lock."""

    pid: int
    program: str
    command: str = ""

    def describe(self) -> str:
        what = self.command or self.program or ""
        if len(what) > 120:  # a long command line (python -c ...) would push the advice out of the alert
            what = what[:117] + "..."
        return f"PID {self.pid}: {what}"


def process_command(pid: int) -> str:
    """A process's command line (shortened), or "" when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    except OSError:
        command = ""
    return command[:297] + "..." if len(command) > 300 else command


def holder_from(message: str) -> Holder | None:
    """The lock holder named in a DuckDB error message, with its command line when readable."""
    found = _HOLDER.search(message)
    if not found:
        return None
    pid = int(found["pid"])
    return Holder(pid, found["program"], process_command(pid))


def is_lock_error(message: str) -> bool:
    return LOCK_ERROR in message


class WarehouseLocked(RuntimeError):
    """Another process holds the warehouse file; the message says which and what to do."""

    def __init__(self, path: Path | str, holder: Holder | None, waited: float | None, *,
                 writing: bool = True) -> None:
        self.path, self.holder, self.waited = Path(path), holder, waited
        who = f"another process ({holder.describe()})" if holder else "another process"
        need = "to write it" if writing else "to read it"
        wait = "" if waited is None else f"Waited {waited:.0f} s (CALLTRAIL_WAREHOUSE_LOCK_WAIT_SECONDS). "
        super().__init__(
            f"the warehouse {path} is held by {who}, and this run needs {need}: DuckDB lets one "
            f"process write the file only while no other has it open, even to read. {wait}"
            f"Close that program (a DuckDB shell, "
            f"notebook or BI tool with the file open), or let a calltrail run that holds it finish, then run "
            f"again. The file is unchanged: it holds the tables of the last build that completed."
        )


class WarehouseUnreadable(RuntimeError):
    """The warehouse file is there, but DuckDB cannot open it: not a DuckDB file, another DuckDB
    version's, damaged, or not readable by this user."""


def locked_error(path: Path | str, output: str, waited: float | None, *,
                 writing: bool = True) -> WarehouseLocked | None:
    """:class:`WarehouseLocked` for a failure whose output (a DuckDB or dbt error) is the lock; else None."""
    if not is_lock_error(output):
        return None
    return WarehouseLocked(path, holder_from(output), waited, writing=writing)


def connect(
    path: Path,
    *,
    read_only: bool = False,
    wait_seconds: float = 0.0,
    poll_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting up to ``wait_seconds`` while another process holds it."""
    started = time.monotonic()
    warned = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            waited = time.monotonic() - started
            error = locked_error(path, str(exc), waited, writing=not read_only)
            if error is None:
                reason = " ".join(str(exc).split())
                raise WarehouseUnreadable(f"cannot open the warehouse {path} (CALLTRAIL_WAREHOUSE) with DuckDB "
                                          f"{duckdb.__version__}: {reason} The file is left as it is.") from exc
            if waited >= wait_seconds:
                raise error from exc
            if not warned:
                log.warning("the warehouse %s is held by %s: waiting up to %.0f s for it", path,
                            error.holder.describe() if error.holder else "another process", wait_seconds)
                warned = True
            sleep(max(0.0, min(poll_seconds, wait_seconds - waited)))


def wait_until_free(path: Path, wait_seconds: float) -> float:
    """Wait until no other process holds the warehouse (it is opened for writing and closed
    again); returns the seconds waited. Raises :class:`WarehouseLocked` after ``wait_seconds``.

    Called before each dbt command, which would otherwise fail at once with DuckDB's error deep
    in a traceback. A file that does not exist yet is nobody's.
    """
    if not path.exists():
        return 0.0
    started = time.monotonic()
    connect(path, wait_seconds=wait_seconds).close()
    return time.monotonic() - started
