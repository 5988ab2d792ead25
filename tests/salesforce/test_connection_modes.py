"""The three ways to connect, through the Airflow connection and the real login flows.

simple-salesforce logs in at https://login.salesforce.com; the connection's ``proxies`` extra sends
that (and the org's instance host) through a local CONNECT proxy to the fake Salesforce.
"""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from calltrail.salesforce.client import (
    AuthenticationFailed,
    ConnectionMisconfigured,
    ResilientSalesforce,
    SalesforceUnavailable,
    SessionRejected,
    connect,
)
from calltrail.salesforce.extract import extract_tasks
from calltrail.settings import SalesforceSettings
from tests.fakes.salesforce import ConnectProxy, FakeSalesforce, FakeSalesforceServer
from tests.salesforce.test_extract import task

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
SF = SalesforceSettings(max_attempts=1)


@pytest.fixture
def org(tmp_path, monkeypatch):
    state = FakeSalesforce(records=[task(1, START), task(2, START + timedelta(minutes=5))],
                           users={"integration@acme.example": "s3cretTOKEN123"})
    with FakeSalesforceServer(state, tmp_path) as server, ConnectProxy(server) as proxy:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.ca_path))
        yield state, proxy


def use_connection(monkeypatch, **conn: object) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps({"conn_type": "salesforce", **conn}))


def extract(tmp_path) -> int:
    client = ResilientSalesforce(lambda: connect("salesforce_default"), max_attempts=1)
    return extract_tasks(client, SF, tmp_path / "lake", until=START + timedelta(hours=1)).records


def test_username_password_and_security_token(org, tmp_path, monkeypatch):
    state, proxy = org
    use_connection(monkeypatch, login="integration@acme.example", password="s3cret",
                   extra={"security_token": "TOKEN123", "proxies": {"https": proxy.url}})
    assert extract(tmp_path) == 2
    assert state.logins == ["password:integration@acme.example"]
    assert "login.salesforce.com:443" in proxy.hosts and "acme.my.salesforce.com:443" in proxy.hosts


def test_wrong_security_token_is_refused_at_login(org, tmp_path, monkeypatch):
    _, proxy = org
    use_connection(monkeypatch, login="integration@acme.example", password="s3cret",
                   extra={"security_token": "WRONG", "proxies": {"https": proxy.url}})
    with pytest.raises(AuthenticationFailed, match="INVALID_LOGIN"):
        extract(tmp_path)


def test_jwt_bearer_with_consumer_key_and_private_key(org, tmp_path, monkeypatch):
    state, proxy = org
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    state.jwt_public_key = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    use_connection(monkeypatch, login="integration@acme.example",
                   extra={"consumer_key": "3MVG9-connected-app", "private_key": pem,
                          "proxies": {"https": proxy.url}})
    assert extract(tmp_path) == 2
    assert state.logins == ["jwt:integration@acme.example:3MVG9-connected-app"]


def rsa_pair() -> tuple[bytes, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return public, pem


def default_client(delays: list[float]) -> ResilientSalesforce:
    """The client ``make run`` builds, with the default settings; sleeps are recorded, not slept."""
    return ResilientSalesforce.from_settings(SalesforceSettings(), sleep=delays.append)


def token_posts(state: FakeSalesforce) -> list[str]:
    return [p for m, p in state.requests if m == "POST" and p == "/services/oauth2/token"]


def test_client_credentials_log_in_at_the_org_s_my_domain_and_extract(org, tmp_path, monkeypatch):
    state, proxy = org
    state.clients = {"3MVG9-cc-app": "cc-s3cret"}
    use_connection(monkeypatch, extra={"consumer_key": "3MVG9-cc-app", "consumer_secret": "cc-s3cret",
                                       "domain": "acme.my", "proxies": {"https": proxy.url}})
    assert extract(tmp_path) == 2
    assert state.logins == ["client_credentials:3MVG9-cc-app"]
    assert "login.salesforce.com:443" not in proxy.hosts, "the client-credentials flow runs on My Domain only"


def test_a_wrong_client_secret_fails_at_once_naming_the_url_and_the_connection(org, tmp_path, monkeypatch):
    state, proxy = org
    state.clients = {"3MVG9-cc-app": "cc-s3cret"}
    use_connection(monkeypatch, extra={"consumer_key": "3MVG9-cc-app", "consumer_secret": "wrong",
                                       "domain": "acme.my", "proxies": {"https": proxy.url}})
    delays: list[float] = []
    with pytest.raises(AuthenticationFailed) as err:
        extract_tasks(default_client(delays), SF, tmp_path / "lake", until=START + timedelta(hours=1))
    message = str(err.value)
    assert "https://acme.my.salesforce.com/services/oauth2/token" in message and "invalid_client" in message
    assert "`salesforce_default`" in message and "not retried" in message and "\n" not in message
    assert len(token_posts(state)) == 1 and delays == [], "bad credentials cannot recover: no retry, no wait"
    assert err.value.recoverable is False, "a scheduler must not retry refused credentials either"
    assert not [p for _, p in state.requests if "/services/data/" in p], "nothing is queried without a login"


def test_client_credentials_token_expiring_mid_run_is_renewed_and_the_data_is_whole(org, tmp_path, monkeypatch):
    state, proxy = org
    state.page_size = 2
    state.records = [task(i, START + timedelta(minutes=i)) for i in range(7)]
    state.clients = {"3MVG9-cc-app": "cc-s3cret"}
    state.sessions_expire_after = 3  # /limits, the COUNT() and the first page, then the session times out
    use_connection(monkeypatch, extra={"consumer_key": "3MVG9-cc-app", "consumer_secret": "cc-s3cret",
                                       "domain": "acme.my", "proxies": {"https": proxy.url}})
    client = default_client([])
    out = extract_tasks(client, SF, tmp_path / "lake", until=START + timedelta(hours=1))
    assert out.records == 7 and out.pages == 4
    assert state.logins == ["client_credentials:3MVG9-cc-app"] * 2 and client.reauthentications == 1
    unauthorised_then_retried = [p for _, p in state.requests if "01gFAKE" in p]
    assert len(unauthorised_then_retried) == 4, f"the page refused with 401 is asked once more: {unauthorised_then_retried}"


def test_jwt_bearer_session_expiring_mid_run_is_renewed(org, tmp_path, monkeypatch):
    state, proxy = org
    state.jwt_public_key, pem = rsa_pair()
    state.sessions_expire_after = 1
    use_connection(monkeypatch, login="integration@acme.example",
                   extra={"consumer_key": "3MVG9-connected-app", "private_key": pem, "proxies": {"https": proxy.url}})
    assert extract(tmp_path) == 2
    assert state.logins == ["jwt:integration@acme.example:3MVG9-connected-app"] * 2


def test_a_jwt_signed_with_another_key_is_an_invalid_grant_and_not_retried(org, tmp_path, monkeypatch):
    state, proxy = org
    state.jwt_public_key, _ = rsa_pair()
    _, other_pem = rsa_pair()
    use_connection(monkeypatch, login="integration@acme.example",
                   extra={"consumer_key": "3MVG9-connected-app", "private_key": other_pem,
                          "proxies": {"https": proxy.url}})
    with pytest.raises(AuthenticationFailed, match="invalid_grant"):
        extract_tasks(default_client([]), SF, tmp_path / "lake", until=START + timedelta(hours=1))
    assert len(token_posts(state)) == 1


def test_an_expired_access_token_cannot_be_renewed_and_says_to_mint_a_new_one(org, tmp_path, monkeypatch):
    state, _ = org
    use_connection(monkeypatch, extra={"instance_url": state.served_at, "access_token": "expired"})
    client = default_client([])
    with pytest.raises(SessionRejected, match="mint a new token"):
        extract_tasks(client, SF, tmp_path / "lake", until=START + timedelta(hours=1))
    assert client.logins == 1 and client.reauthentications == 0


def test_client_credentials_without_a_my_domain_is_refused_before_any_request(org, tmp_path, monkeypatch):
    state, proxy = org
    use_connection(monkeypatch, extra={"consumer_key": "k", "consumer_secret": "s", "proxies": {"https": proxy.url}})
    with pytest.raises(ConnectionMisconfigured, match="My Domain"):
        extract(tmp_path)
    assert state.requests == []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_fails_after_three_attempts_within_a_minute(tmp_path, monkeypatch):
    port = closed_port()
    use_connection(monkeypatch, extra={"instance_url": f"https://127.0.0.1:{port}", "access_token": "t"})
    delays: list[float] = []
    began = time.monotonic()
    with pytest.raises(SalesforceUnavailable) as err:
        extract_tasks(default_client(delays), SF, tmp_path / "lake", until=START + timedelta(hours=1))
    assert str(err.value) == (f"Salesforce at https://127.0.0.1:{port} refused the connection after 3 attempts: "
                              "check the connection `salesforce_default`")
    assert len(delays) == 2 and sum(delays) < 20, f"two backoffs between three attempts, saw {delays}"
    assert err.value.recoverable is True, "an outage may end: a scheduled retry may succeed"
    assert time.monotonic() - began < 60


def test_a_refusing_proxy_fails_after_three_attempts_naming_the_login_url(tmp_path, monkeypatch):
    use_connection(monkeypatch, extra={"consumer_key": "k", "consumer_secret": "s", "domain": "acme.my",
                                       "proxies": {"https": f"http://127.0.0.1:{closed_port()}"}})
    delays: list[float] = []
    with pytest.raises(SalesforceUnavailable) as err:
        extract_tasks(default_client(delays), SF, tmp_path / "lake", until=START + timedelta(hours=1))
    assert str(err.value).startswith("Salesforce at https://acme.my.salesforce.com could not be reached through "
                                     "the proxy after 3 attempts: check the connection `salesforce_default`")
    assert len(delays) == 2


def test_an_unresolvable_host_fails_after_three_attempts(tmp_path, monkeypatch):
    use_connection(monkeypatch, extra={"instance_url": "https://calltrail-no-such-org.invalid",
                                       "access_token": "t"})
    delays: list[float] = []
    began = time.monotonic()
    with pytest.raises(SalesforceUnavailable, match=r"calltrail-no-such-org.invalid could not be resolved \(DNS\) "
                                                    r"after 3 attempts: check the connection `salesforce_default`"):
        extract_tasks(default_client(delays), SF, tmp_path / "lake", until=START + timedelta(hours=1))
    assert len(delays) == 2 and time.monotonic() - began < 60


def test_the_retry_timeout_and_budget_settings_are_read_and_checked():
    from calltrail.settings import ConfigurationError, load

    sf = load({"CALLTRAIL_SF_CONNECT_ATTEMPTS": "2", "CALLTRAIL_SF_MAX_BACKOFF_SECONDS": "30",
               "CALLTRAIL_SF_CONNECT_TIMEOUT_SECONDS": "5", "CALLTRAIL_SF_READ_TIMEOUT_SECONDS": "60",
               "CALLTRAIL_SF_API_RESERVE_PERCENT": "25"}).salesforce
    assert (sf.connect_attempts, sf.max_backoff_seconds, sf.connect_timeout_seconds, sf.read_timeout_seconds,
            sf.api_reserve_percent) == (2, 30.0, 5.0, 60.0, 25.0)
    defaults = load({}).salesforce
    assert (defaults.connect_attempts, defaults.connect_timeout_seconds, defaults.api_reserve_percent) == (3, 10.0, 10.0)
    for name, value in (("CALLTRAIL_SF_CONNECT_ATTEMPTS", "0"), ("CALLTRAIL_SF_API_RESERVE_PERCENT", "100"),
                        ("CALLTRAIL_SF_READ_TIMEOUT_SECONDS", "0"), ("CALLTRAIL_SF_MAX_BACKOFF_SECONDS", "-1")):
        with pytest.raises(ConfigurationError, match=name):
            load({name: value})
