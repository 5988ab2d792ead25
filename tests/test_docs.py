"""The README and docs/ say only what holds: the make targets, `calltrail` commands, links,
settings and tests they name exist, and nothing tracked points outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CALLTRAIL = Path(sys.executable).with_name("calltrail")

# Words that follow "calltrail " in the docs without being commands: the custom view `calltrail docs`
# that the pages ask Airflow's auth manager about, and the menu entry "Browse > calltrail dbt docs".
NOT_COMMANDS = {"docs", "dbt"}

# Written in two parts so that this file does not contain what it looks for.
OUTSIDE = ("DOMAIN" + ".md", ".." + "/shared")

_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_FENCE = re.compile(r"^```.*?$(.*?)^```", re.S | re.M)
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_VAR = re.compile(r"\bCALLTRAIL_[A-Z0-9_]*[A-Z0-9]\b")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _code(path: Path) -> list[str]:
    """The commands a page shows: inline code spans and the lines of fenced blocks."""
    text = _text(path)
    lines = [line for block in _FENCE.findall(text) for line in block.splitlines()]
    outside_fences = _FENCE.sub("", text)
    return _CODE_SPAN.findall(outside_fences) + lines


def _named(pattern: str) -> list[tuple[str, str]]:
    """(page, name) for every `<pattern> name` in the code of the README and docs/."""
    found = []
    for page in DOCS:
        for snippet in _code(page):
            for match in re.finditer(pattern, snippet):
                found.append((page.relative_to(ROOT).as_posix(), match.group(1)))
    return found


@cache
def _make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", _text(ROOT / "Makefile"), re.M))


@cache
def _choices(*args: str) -> set[str]:
    """The choices of the first positional argument in `calltrail <args> --help`."""
    out = subprocess.run([str(CALLTRAIL), *args, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"calltrail {' '.join(args)} --help failed: {out.stderr}"
    usage = re.search(r"\{([\w,-]+)\}", out.stdout)
    return set(usage.group(1).split(",")) if usage else set()


def test_every_make_target_the_docs_name_is_in_the_makefile():
    named = _named(r"(?:^|\s|\$ )make ([a-z][\w-]*)")
    assert named, "the docs name no make target at all: the pattern is broken"
    missing = sorted({f"{page}: make {target}" for page, target in named if target not in _make_targets()})
    assert not missing, f"targets not in the Makefile ({sorted(_make_targets())}): {missing}"


def test_every_make_variable_the_docs_give_changes_what_make_runs():
    """`make run FULL_REFRESH=1`, `make summary MODEL=NAME`: make's dry run (-n) with the variable
    differs from the one without, so the Makefile reads it."""
    named = _named(r"(?:^|\s|\$ )(make [a-z][\w-]* [A-Z][A-Z_]*=\S+)")
    assert named, "the docs give no make variable at all: the pattern is broken"
    unread = []
    for page, call in sorted(set(named)):
        _, target, assignment = call.split(" ", 2)
        dry = [subprocess.run(["make", "-n", "-C", str(ROOT), target, *extra], capture_output=True, text=True,
                              timeout=120).stdout for extra in ([assignment], [])]
        if dry[0] == dry[1]:
            unread.append(f"{page}: {call}")
    assert not unread, f"the Makefile does not read these: {unread}"


def test_every_calltrail_command_the_docs_name_is_a_subcommand_of_the_cli():
    commands = _choices()
    assert {"run", "demo"} <= commands, f"could not read the subcommands from `calltrail --help`: {commands}"
    named = _named(r"(?:^|\s|/|\$ )calltrail ([a-z][\w-]*(?: [a-z][\w-]*)?)")
    assert named, "the docs name no calltrail command at all: the pattern is broken"
    wrong = []
    for page, words in named:
        command, _, action = words.partition(" ")
        if command in NOT_COMMANDS:
            continue
        if command not in commands:
            wrong.append(f"{page}: calltrail {command} (commands: {sorted(commands)})")
        elif action and _choices(command) and action not in _choices(command) and not action.startswith("-"):
            wrong.append(f"{page}: calltrail {command} {action} (actions: {sorted(_choices(command))})")
    assert not wrong, "commands the CLI does not have:\n" + "\n".join(sorted(set(wrong)))


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for heading in re.findall(r"^#{1,6} (.+)$", _FENCE.sub("", _text(path)), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_relative_link_in_the_readme_and_docs_resolves():
    broken = []
    checked = 0
    for page in DOCS:
        for target in _LINK.findall(_FENCE.sub("", _text(page))):
            if re.match(r"[a-z]+:", target):  # https:, mailto:, file:
                continue
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            checked += 1
            where = f"{page.relative_to(ROOT)}: ({target})"
            if not resolved.is_relative_to(ROOT):
                broken.append(f"{where} points outside the repository")
            elif not resolved.exists():
                broken.append(f"{where} -> {resolved.relative_to(ROOT)} does not exist")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{where}: no heading #{anchor} in {resolved.relative_to(ROOT)}")
    assert checked > 20, f"only {checked} relative links found: the pattern is broken"
    assert not broken, "broken links:\n" + "\n".join(broken)


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, f"git ls-files failed (this test needs the git checkout): {out.stderr}"
    return [ROOT / name for name in out.stdout.split("\0") if name and name != "uv.lock"]


def test_no_tracked_file_points_at_a_specification_outside_the_repository():
    offenders = []
    for path in _tracked():
        if not path.is_file():
            continue
        data = path.read_bytes()
        offenders += [f"{path.relative_to(ROOT)}: {word}" for word in OUTSIDE if word.encode() in data]
    assert not offenders, "a clone is all a user has; these files point outside it:\n" + "\n".join(offenders)


def _settings_variables() -> set[str]:
    from calltrail import settings

    return {row.variable for row in settings.TABLE}


def _configuration_tables() -> tuple[dict[str, str], str]:
    """docs/configuration.md's rows before "Read elsewhere" (variable -> default cell), and that text."""
    text = _text(ROOT / "docs" / "configuration.md").split("\n## Read elsewhere", 1)[0]
    rows = dict(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|", text, re.M))
    return {name: cell.strip() for name, cell in rows.items()}, text


def test_every_setting_has_a_row_in_the_configuration_page_with_its_default():
    from calltrail import settings

    rows, _ = _configuration_tables()
    assert len(settings.TABLE) > 40, f"the settings table has only {len(settings.TABLE)} rows"
    wrong = []
    for row in settings.TABLE:
        cell = rows.get(row.variable)
        expected = f"`{row.default}`" if row.default else "empty"
        if cell is None:
            wrong.append(f"{row.variable}: no row (default {expected})")
        elif not cell.startswith(expected):
            wrong.append(f"{row.variable}: default cell {cell!r}, the table's default is {expected}")
    assert not wrong, "docs/configuration.md disagrees with settings.TABLE:\n" + "\n".join(wrong)


def test_every_variable_the_configuration_page_documents_is_a_setting():
    from calltrail import settings

    rows, text = _configuration_tables()
    table = {row.variable for row in settings.TABLE}
    named = set(rows) | set(_VAR.findall(text))
    unknown = sorted(named - table)
    assert not unknown, f"docs/configuration.md documents these as settings, settings.TABLE has no row: {unknown}"
    elsewhere = _text(ROOT / "docs" / "configuration.md").split("\n## Read elsewhere", 1)[1].split("\n## ", 1)[0]
    misplaced = sorted(set(_VAR.findall(elsewhere)) & table)
    assert not misplaced, f"settings.py reads these, yet the page lists them under 'Read elsewhere': {misplaced}"


def _code_variables() -> set[str]:
    """CALLTRAIL_* names in the tracked code and deployment files (not in the docs)."""
    names = set()
    for path in _tracked():
        rel = path.relative_to(ROOT).as_posix()
        if rel == "README.md" or rel.startswith(("docs/", ".tools/")) or path == Path(__file__).resolve():
            continue
        if path.is_file() and path.suffix not in {".png", ".woff2", ".gz"}:
            names |= set(_VAR.findall(path.read_text(encoding="utf-8", errors="replace")))
    return names | _settings_variables()


def test_every_variable_the_docs_name_exists_in_the_code():
    known = _code_variables()
    unknown = []
    for page in DOCS:
        for name in sorted(_VAR.findall(_text(page))):
            if name in known:
                continue
            unknown.append(f"{page.relative_to(ROOT)}: {name}")
    assert not unknown, "variables no code reads:\n" + "\n".join(sorted(set(unknown)))


def test_every_test_the_fault_matrix_names_exists():
    matrix = ROOT / "docs" / "faults.md"
    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", _text(matrix))
    assert len(named) > 40, f"only {len(named)} tests named in {matrix.name}: the pattern is broken"
    missing = [f"{file}::{name}" for file, name in named
               if not (ROOT / file).is_file()
               or not re.search(rf"^(?:async )?def {name}\(", _text(ROOT / file), re.M)]
    assert not missing, "the fault matrix names tests that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("page", [p for p in DOCS if p.name != "README.md"], ids=lambda p: p.name)
def test_every_docs_page_is_linked_from_the_readme(page):
    assert f"](docs/{page.name})" in _text(ROOT / "README.md"), f"README.md does not link docs/{page.name}"


def test_every_section_of_the_rules_that_the_code_cites_exists():
    headings = {h.strip() for h in re.findall(r"^## (.+)$", _text(ROOT / "docs" / "rules.md"), re.M)}
    cited = []
    for path in _tracked():
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("plugins/", "dbt_project/", "dags/", "scripts/", "bench/")) and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            cited += [(rel, section) for section in re.findall(r"docs/rules\.md, ([A-Z][\w -]*\w)", text)]
    assert cited, "no code cites docs/rules.md: the pattern is broken"
    missing = [f"{rel}: {section!r}" for rel, section in cited
               if not all(part in headings for part in section.split(" and "))]
    assert not missing, f"sections cited that docs/rules.md does not have ({sorted(headings)}):\n" + "\n".join(missing)


_REPO_PATH = re.compile(r"^(?:plugins|dags|dbt_project|tests|docs|scripts|bench)/[\w./*-]*[\w*/]$")


def _repo_paths() -> list[tuple[str, str]]:
    """(page, path) for every code span of the README and docs/ that is a path in the repository
    (``plugins/calltrail/lake/layout.py``, ``tests/ops/``); a ``::test`` suffix is cut off."""
    found = []
    for page in DOCS:
        for snippet in _CODE_SPAN.findall(_text(page)):
            candidate = snippet.split("::")[0].strip()
            if _REPO_PATH.match(candidate):
                found.append((page.relative_to(ROOT).as_posix(), candidate))
    return found


def _generated(path: str) -> bool:
    """Whether git ignores the path: something a run makes (``dbt_project/target/manifest.json``),
    which a fresh clone does not have yet. A folder's path is asked with a name in it, since git
    cannot tell that a path it does not find is a folder."""
    inside = path.rstrip("/") + "/x"
    return subprocess.run(["git", "check-ignore", "--no-index", path, inside], cwd=ROOT,
                          capture_output=True).returncode == 0


def test_every_repository_path_the_docs_name_exists():
    assert len(_repo_paths()) > 20, "the path reader finds the docs' paths"
    assert _generated("dbt_project/target") and not _generated("dbt_project/dbt_project.yml")
    missing = [f"{page}: {path}" for page, path in _repo_paths()
               if not (any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()) and not _generated(path)]
    assert missing == [], "paths the docs name that are not in the repository:\n" + "\n".join(missing)
