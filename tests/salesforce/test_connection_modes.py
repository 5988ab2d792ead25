"""The three ways to connect, through the Airflow connection and the real login flows.

simple-salesforce logs in at https://login.salesforce.com; the connection's ``proxies`` extra sends
that (and the org's instance host) through a local CONNECT proxy to the fake Salesforce.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from calltrail.salesforce.client import ResilientSalesforce, connect
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
    with pytest.raises(SalesforceAuthenticationFailed, match="INVALID_LOGIN"):
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
