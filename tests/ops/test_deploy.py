"""The init service's passwords file, read back by Airflow's own SimpleAuthManager (no server)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.airflow_env import calltrail_env, run

LOGIN = textwrap.dedent("""
    import json, sys
    from fastapi import HTTPException
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.datamodels.login import LoginBody
    from airflow.api_fastapi.auth.managers.simple.services.login import SimpleAuthManagerLogin
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    create_auth_manager().init()  # what the api-server does at start: it must not invent a password
    result = {"users": [[u.username, u.role] for u in SimpleAuthManager.get_users()],
              "passwords": SimpleAuthManager.get_passwords()}
    for name, password in json.loads(sys.argv[1]):
        try:
            result[f"{name}/{password}"] = bool(SimpleAuthManagerLogin.create_token(
                LoginBody(username=name, password=password)))
        except HTTPException as exc:
            result[f"{name}/{password}"] = exc.status_code
    print(json.dumps(result))
""")


def write_passwords(file: Path, user: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "calltrail.ops.deploy", "--passwords-file", str(file), "--user", user],
                          input=password, capture_output=True, text=True, timeout=60, check=False)


def test_the_admin_from_env_logs_in_and_a_wrong_password_does_not(tmp_path):
    import json

    file = tmp_path / "auth" / "simple_auth_manager_passwords.json"
    password = 'p@ss:w"rd with spaces$ and {json}'
    done = write_passwords(file, "ops", password + "\n")
    assert done.returncode == 0, done.stderr
    assert password not in done.stdout + done.stderr, "the password must not be printed"
    assert oct(file.stat().st_mode & 0o777) == "0o600"

    env = calltrail_env(tmp_path, AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="ops:admin",
                        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="False",
                        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(file),
                        AIRFLOW__API_AUTH__JWT_SECRET="x" * 64)
    attempts = [["ops", password], ["ops", "admin"], ["admin", "admin"]]
    out = run([sys.executable, "-c", LOGIN, json.dumps(attempts)], env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["users"] == [["ops", "admin"]]
    assert seen["passwords"] == {"ops": password}, "the api-server's init changed the passwords file"
    assert seen[f"ops/{password}"] is True
    assert seen["ops/admin"] == 401
    assert seen["admin/admin"] == 401, "Airflow's default admin:admin must not work"


def test_running_init_again_replaces_the_password(tmp_path):
    file = tmp_path / "passwords.json"
    assert write_passwords(file, "admin", "first").returncode == 0
    assert write_passwords(file, "admin", "second").returncode == 0
    assert file.read_text() == '{"admin": "second"}\n'
    assert not [p for p in os.listdir(tmp_path) if p != "passwords.json"], "a temporary file was left behind"


def test_an_empty_admin_password_is_refused_with_what_to_set(tmp_path):
    file = tmp_path / "passwords.json"
    done = write_passwords(file, "admin", "\n")
    assert done.returncode == 2
    assert "AIRFLOW_ADMIN_PASSWORD" in done.stderr
    assert not file.exists()
