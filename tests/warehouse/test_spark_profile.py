"""calltrail's own connection to a Spark Thrift Server reads the profile's ``spark_thrift`` output as
dbt reads it: compared here with dbt's own rendering of ``dbt_project/profiles.yml``, for each way
of authenticating. The connections themselves are tested against a real server that authenticates
with LDAP in tests/transform/test_spark.py."""

import importlib.util
import json
import subprocess
import sys

import pytest

from calltrail.warehouse.spark import PROFILES, SparkUnavailable, profile_output, thrift_connection

# dbt's credentials for the spark_thrift output, rendered by dbt in a process of its own (dbt's
# flags and invocation context are process-wide)
DBT_RENDERS = """
import json, sys
from argparse import Namespace
from dbt.config.profile import Profile, read_profile
from dbt.config.renderer import ProfileRenderer
from dbt.flags import set_from_args
from dbt_common.context import set_invocation_context

set_from_args(Namespace(), None)
set_invocation_context(json.loads(sys.argv[2]))
profile = Profile.from_raw_profiles(read_profile(sys.argv[1]), "calltrail", ProfileRenderer({}),
                                    target_override="spark_thrift")
c = profile.credentials
print(json.dumps({key: getattr(c, key) for key in
                  ("host", "port", "user", "auth", "password", "kerberos_service_name", "use_ssl",
                   "server_side_parameters")}))
"""

ENVIRONS = [
    {},
    {"CALLTRAIL_SPARK_HOST": "thrift.example.com", "CALLTRAIL_SPARK_PORT": "10001", "CALLTRAIL_SPARK_USER": "ana",
     "CALLTRAIL_SPARK_AUTH": "LDAP", "CALLTRAIL_SPARK_PASSWORD": "1e3 is no number"},
    {"CALLTRAIL_SPARK_AUTH": "LDAP", "CALLTRAIL_SPARK_PASSWORD": "1e3"},
    {"CALLTRAIL_SPARK_AUTH": "KERBEROS", "CALLTRAIL_SPARK_KERBEROS_SERVICE_NAME": "hive"},
    {"CALLTRAIL_SPARK_PASSWORD": ""},
    {"CALLTRAIL_SPARK_USE_SSL": "true", "CALLTRAIL_SPARK_AUTH": "LDAP", "CALLTRAIL_SPARK_PASSWORD": "pw"},
    {"CALLTRAIL_SPARK_USE_SSL": "TRUE", "CALLTRAIL_SPARK_AUTH": "ldap", "CALLTRAIL_SPARK_PASSWORD": "pw"},
    {"CALLTRAIL_SPARK_USE_SSL": "false"},
    {"CALLTRAIL_SPARK_USE_SSL": "yes"},
]


@pytest.mark.parametrize("environ", ENVIRONS, ids=lambda e: ",".join(f"{k[16:]}={v}" for k, v in e.items()) or "defaults")
def test_calltrails_connection_reads_the_spark_thrift_output_as_dbt_does(environ):
    out = subprocess.run([sys.executable, "-c", DBT_RENDERS, str(PROFILES.parent), json.dumps(environ)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    dbt = json.loads(out.stdout.strip().splitlines()[-1])
    ours = profile_output(environ, "spark_thrift")
    assert {key: ours[key] for key in ("host", "user", "auth", "password", "kerberos_service_name")} == {
        key: dbt[key] for key in ("host", "user", "auth", "password", "kerberos_service_name")}
    assert int(ours["port"]) == dbt["port"]
    # dbt's value is a boolean; calltrail's connection reads the rendered text as thrift_connection does
    assert (str(ours["use_ssl"]).lower() == "true") is dbt["use_ssl"]
    # dbt-spark adds spark.sql.ansi.enabled of its own; every setting the profile names is dbt's too
    assert ours["server_side_parameters"].items() <= dbt["server_side_parameters"].items()


def test_without_authentication_variables_the_output_connects_as_none_with_no_password():
    out = profile_output({}, "spark_thrift")
    assert (out["auth"], out["password"], out["kerberos_service_name"]) == ("NONE", None, None)


def test_kerberos_without_its_python_package_stops_before_connecting_and_says_what_is_missing():
    # the lock has no kerberos package (no wheel for Linux): PyHive's SASL library then has no GSSAPI
    assert importlib.util.find_spec("kerberos") is None, "kerberos is installed now: update the docs and this test"
    environ = {"CALLTRAIL_SPARK_HOST": "127.0.0.1", "CALLTRAIL_SPARK_PORT": "1", "CALLTRAIL_SPARK_AUTH": "KERBEROS",
               "CALLTRAIL_SPARK_KERBEROS_SERVICE_NAME": "hive"}  # nothing listens on port 1
    with pytest.raises(SparkUnavailable) as error:
        thrift_connection(environ)
    assert str(error.value).startswith("authentication KERBEROS (CALLTRAIL_SPARK_AUTH) to the Spark Thrift Server "
                                       "at 127.0.0.1:1 needs the Python package kerberos")


@pytest.mark.parametrize("tls", ["false", "true"])
@pytest.mark.parametrize(("auth", "password", "said"), [("none", "secret", "NONE and a password"),
                                                          ("ldap", "", "LDAP but no password")])
def test_a_password_without_ldap_or_ldap_without_one_stops_before_connecting(tls, auth, password, said):
    environ = {"CALLTRAIL_SPARK_HOST": "127.0.0.1", "CALLTRAIL_SPARK_PORT": "1", "CALLTRAIL_SPARK_USE_SSL": tls,
               "CALLTRAIL_SPARK_AUTH": auth, "CALLTRAIL_SPARK_PASSWORD": password}  # nothing listens on port 1
    with pytest.raises(SparkUnavailable) as error:
        thrift_connection(environ)
    assert str(error.value) == (f"the profile's spark_thrift output cannot connect with authentication {said} "
                                "(CALLTRAIL_SPARK_AUTH, CALLTRAIL_SPARK_PASSWORD): a password goes with ldap only")


def test_spark_logs_as_calltrail_keeps_it_unless_the_profile_names_a_log4j2_file_of_its_own(tmp_path):
    from calltrail.warehouse.spark import LOG4J2, session_conf, with_calltrails_log

    profile = session_conf({"CALLTRAIL_SPARK_WAREHOUSE_DIR": str(tmp_path)})
    derby = f"-Dderby.stream.error.file={tmp_path}/derby.log"
    assert profile["spark.driver.extraJavaOptions"] == derby, "the profile's own option, kept below"
    conf, quiet = with_calltrails_log(profile)
    assert quiet and conf["spark.ui.showConsoleProgress"] == "false"
    assert conf["spark.driver.extraJavaOptions"] == f"{derby} -Dlog4j2.configurationFile={LOG4J2.as_uri()}"
    assert "rootLogger.level = error" in LOG4J2.read_text()
    assert {k: v for k, v in conf.items() if k != "spark.driver.extraJavaOptions"} == {
        **{k: v for k, v in profile.items() if k != "spark.driver.extraJavaOptions"}, "spark.ui.showConsoleProgress": "false"}

    own = {**profile, "spark.driver.extraJavaOptions": f"{derby} -Dlog4j2.configurationFile=/etc/spark/log4j2.properties"}
    conf, quiet = with_calltrails_log(own)
    assert not quiet and conf["spark.driver.extraJavaOptions"] == own["spark.driver.extraJavaOptions"]
