"""Fixtures shared by the fault tests."""

from __future__ import annotations

import pytest

from calltrail import settings as settings_module
from calltrail.salesforce.files import ingest_task_files
from calltrail.transform.dbt import run_dbt
from calltrail.web.ingest import ingest_web_events
from tests.airflow_env import calltrail_env
from tests.faults.helpers import BUILD, write_events, write_tasks


@pytest.fixture(scope="session")
def small_build(tmp_path_factory):
    """A lake (2,000 page views, 200 call Tasks), a dbt build and a publish: the data folder of an
    installation whose last run succeeded. Tests copy it before they change anything."""
    tmp = tmp_path_factory.mktemp("small_build")
    s = settings_module.load(calltrail_env(tmp))
    write_events(s.web_landing_dir / "events-1.jsonl", 2_000)
    write_tasks(s.task_landing_dir / "tasks-1.jsonl", 200)
    ingest_web_events(s.web_landing_dir, s.lake_dir)
    ingest_task_files(s.task_landing_dir, s.lake_dir, s.salesforce)
    run_dbt(s, BUILD, in_process=True)
    run_dbt(s, ["run-operation", "calltrail__publish"], in_process=True)
    return tmp / "data"
