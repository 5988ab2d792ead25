"""The one step of the team deployment's init service that Airflow has no command for.

Airflow 3's default SimpleAuthManager takes its users from ``[core] simple_auth_manager_users``
(``name:role,...``) and their passwords from a JSON file, ``{"name": "password", ...}``, at
``[core] simple_auth_manager_passwords_file``. When a configured user is missing from that file the
api-server invents a password and prints it to its log. The init service writes the file instead,
from the admin password in ``.env``, so the login is the one the team chose::

    printf '%s' "$AIRFLOW_ADMIN_PASSWORD" | python -m calltrail.ops.deploy --passwords-file FILE --user admin

The password is read from standard input, never from the command line (which ``ps`` shows).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path


class DeployError(ValueError):
    """The init service cannot write the passwords file; the message says what to fix."""


def write_passwords_file(path: Path, passwords: Mapping[str, str]) -> None:
    """Replace ``path`` with ``passwords`` as SimpleAuthManager reads it, readable by its owner only."""
    for user, password in passwords.items():
        if not user or ":" in user or "," in user:
            raise DeployError(f"user name {user!r} cannot be listed in [core] simple_auth_manager_users: "
                              "use a name without ':' or ','")
        if not password:
            raise DeployError(f"the password for {user!r} is empty: set AIRFLOW_ADMIN_PASSWORD in .env")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(dict(passwords)) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m calltrail.ops.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--passwords-file", type=Path, required=True,
                        help="[core] simple_auth_manager_passwords_file")
    parser.add_argument("--user", required=True, help="the admin user named in [core] simple_auth_manager_users")
    args = parser.parse_args(argv)
    password = sys.stdin.read().rstrip("\r\n")
    try:
        write_passwords_file(args.passwords_file, {args.user: password})
    except DeployError as exc:
        parser.error(str(exc))
    print(f"calltrail: password of Airflow user {args.user!r} written to {args.passwords_file}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
