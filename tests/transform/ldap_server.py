"""An LDAP directory on this machine for the Spark Thrift Server of the tests to authenticate
against, as a company's cluster does (``hive.server2.authentication=LDAP``): OpenLDAP's slapd from
Debian (scripts/system-deps.sh), with one person, its database and configuration in a folder of its
own, listening on 127.0.0.1 only.

    python -m tests.transform.ldap_server FOLDER PORT    (runs until interrupted)
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.transform.spark_thrift_server import free_port, listening

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SUFFIX = "dc=calltrail,dc=test"
PEOPLE = f"ou=people,{SUFFIX}"
USER = "analyst"
PASSWORD = "s3cret-Pass"


@dataclass(frozen=True)
class LdapServer:
    url: str
    base_dn: str  # HiveServer2 binds as uid=USER,base_dn
    user: str
    password: str

    def hiveconf(self) -> dict[str, str]:
        """The settings that make a HiveServer2 (the Spark Thrift Server) authenticate against it."""
        return {"hive.server2.authentication": "LDAP", "hive.server2.authentication.ldap.url": self.url,
                "hive.server2.authentication.ldap.baseDN": self.base_dn}


def _config(folder: Path, admin_password: str) -> str:
    return f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {folder}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{SUFFIX}"
rootdn "cn=admin,{SUFFIX}"
rootpw {admin_password}
directory {folder}/db
access to attrs=userPassword by anonymous auth by * none
access to * by * read
"""


def _entries(user: str, password: str) -> str:
    return f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: calltrail
o: calltrail tests

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: uid={user},{PEOPLE}
objectClass: inetOrgPerson
uid: {user}
cn: {user}
sn: {user}
userPassword: {password}
"""


@contextmanager
def ldap_server(folder: Path, port: int | None = None, user: str = USER, password: str = PASSWORD,
                timeout: float = 30) -> Iterator[LdapServer]:
    """slapd with the person ``user`` (``password``) under ``PEOPLE``, until the block ends."""
    if not SLAPD.exists():
        raise RuntimeError(f"{SLAPD} is missing: OpenLDAP's server comes from Debian's slapd "
                           "(scripts/system-deps.sh installs it)")
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "db").mkdir(exist_ok=True)
    conf = folder / "slapd.conf"
    conf.write_text(_config(folder, "admin-" + password))
    (folder / "entries.ldif").write_text(_entries(user, password))
    log = folder / "slapd.log"
    loaded = subprocess.run([str(SLAPADD), "-f", str(conf), "-l", str(folder / "entries.ldif")],
                            capture_output=True, text=True)
    if loaded.returncode:
        raise RuntimeError(f"slapadd could not load the directory (exit {loaded.returncode}): "
                           f"{(loaded.stdout + loaded.stderr)[-3000:]}")
    # -d 0: in the foreground, so that it stops with its process group
    with listening([str(SLAPD), "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"], port, log,
                   "slapd", timeout, poll=0.2):
        yield LdapServer(f"ldap://127.0.0.1:{port}", PEOPLE, user, password)


if __name__ == "__main__":
    with ldap_server(Path(sys.argv[1]), int(sys.argv[2])) as server:
        print(f"slapd at {server.url}: uid={server.user},{server.base_dn} password {server.password}; "
              "Ctrl-C stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
