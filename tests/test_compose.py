"""docker-compose.yml is valid against the Compose Specification's JSON schema (no Docker engine here)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "vendor" / "compose-spec.json"  # vendored, see tests/vendor/README.md


def test_compose_file_matches_the_compose_specification():
    schema = json.loads(SCHEMA.read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.validate(compose, schema)
    assert "calltrail" in compose["services"]
