"""Shared fixtures. The package under plugins/ is importable (installed into the venv)."""

from __future__ import annotations

import pytest

from calltrail import settings as settings_module
from tests.airflow_env import calltrail_env


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory):
    """dbt_project/target/manifest.json, as `calltrail setup` writes it (the transform DAG needs it)."""
    from calltrail.transform.dbt_commands import parse

    tmp = tmp_path_factory.mktemp("manifest")
    return parse(settings_module.load(calltrail_env(tmp)))
