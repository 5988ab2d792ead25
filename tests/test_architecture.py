"""The house: imports run one way, down from the Airflow tasks to the libraries.

Every import of a ``calltrail`` module (at the top of a file or inside a function) is read from the
source and checked against the floors below. A library that reached up into the Airflow adapter or
the task layer (as the alert channels once reached into the ingestion tasks for the connection
lookup) fails here with the file, the line and the two rooms.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "calltrail"

# The floors, bottom first. A module may import from its own room and from any lower floor.
FLOORS: list[set[str]] = [
    {"dbt_project"},  # the dbt project's vars: the defaults of some settings
    {"settings"},
    {"lake", "warehouse"},
    {"salesforce", "web", "transform", "demo"},
    {"quality"},  # the checks read the lake and the warehouse, and run dbt source freshness
    {"airflow", "report"},  # the report page reads the published marts; the plugin serves its folder
    {"tasks", "summary", "ops"},
    {"cli"},
]
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}


def room_of(module: str) -> str:
    """``calltrail.lake.convert`` -> ``lake``; ``calltrail.settings`` -> ``settings``."""
    return module.split(".")[1]


def calltrail_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("calltrail"):
            if node.module == "calltrail":  # from calltrail import settings, summary
                found += [(node.lineno, f"calltrail.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("calltrail.")]
    return found


def modules() -> list[tuple[Path, str]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if name != "calltrail":
            out.append((path, name))
    return out


def test_every_room_of_the_package_has_a_floor():
    rooms = {room_of(name) for _, name in modules()}
    assert rooms - FLOOR.keys() == set(), "a new room needs its floor in FLOORS (and a line in the README's layout)"
    assert FLOOR.keys() - rooms == set(), "FLOORS names a room the package no longer has"


def test_no_module_imports_from_a_room_above_its_own():
    upward = []
    for path, name in modules():
        here = room_of(name)
        for line, imported in calltrail_imports(path):
            there = room_of(imported)
            if there != here and FLOOR[there] >= FLOOR[here]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} (floor {FLOOR[here]}) "
                              f"imports {imported} ({there}, floor {FLOOR[there]})")
    assert upward == [], "imports that run up or sideways:\n" + "\n".join(upward)


def test_the_check_library_knows_nothing_of_airflow():
    """``quality`` is a pure library: Airflow, its connections and notifiers are the adapter's."""
    offenders = []
    for path in sorted((PACKAGE / "quality").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            offenders += [f"{path.name}:{node.lineno}: {n}" for n in names if n == "airflow" or n.startswith("airflow.")]
    assert offenders == []


def test_the_check_catches_an_import_that_runs_up(tmp_path):
    """The reader above finds an import inside a function, as the old connection lookup was."""
    source = tmp_path / "mod.py"
    source.write_text("def f():\n    from calltrail.tasks.ingest import x\n    return x\n")
    assert calltrail_imports(source) == [(2, "calltrail.tasks.ingest")]
