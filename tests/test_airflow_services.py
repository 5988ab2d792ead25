"""The environment `make airflow` gives its components: the same for all, no login only on loopback."""

from __future__ import annotations

import json

from calltrail import settings as settings_module
from calltrail.airflow_services import Endpoint, is_loopback, service_environment
from calltrail.local_airflow import environment
from tests.airflow_env import calltrail_env


def env_for(tmp_path, host, **extra):
    s = settings_module.load(calltrail_env(tmp_path, **extra))
    return s, service_environment(s, environment(s), Endpoint(host, 18080))


def test_loopback_addresses():
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "airflow.example.com"))


def test_on_loopback_nobody_logs_in_and_every_component_shares_the_secrets(tmp_path):
    s, env = env_for(tmp_path, "127.0.0.1")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "True"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64 and env["AIRFLOW__API__SECRET_KEY"]
    _, again = env_for(tmp_path, "127.0.0.1")  # generated once, then reused by every start
    assert (again["AIRFLOW__API_AUTH__JWT_SECRET"], again["AIRFLOW__API__SECRET_KEY"]) == (
        env["AIRFLOW__API_AUTH__JWT_SECRET"], env["AIRFLOW__API__SECRET_KEY"])
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    docs = json.loads(env["AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"])["calltrail"]
    assert docs["dir"] == str(s.dbt_docs_dir) and docs["index"] == "index.html"


def test_beyond_loopback_a_login_is_required_even_if_asked_otherwise(tmp_path):
    s, env = env_for(tmp_path, "0.0.0.0", AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True")
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
    passwords = json.loads((s.airflow_home / "simple_auth_manager_passwords.json").read_text())
    assert len(passwords["admin"]) >= 12
