"""A Salesforce session that survives what the API throws at a long extraction, and fails fast on
what it cannot survive.

Logging in (:class:`SalesforceConnector`, chosen by what the Airflow connection holds):

- OAuth 2.0 client credentials: extras ``consumer_key``, ``consumer_secret`` and ``domain`` (the
  org's My Domain, e.g. ``acme.my``);
- OAuth 2.0 JWT bearer: login (the integration user) + extras ``consumer_key`` and
  ``private_key`` / ``private_key_file_path``;
- an access token minted elsewhere: extras ``access_token`` and ``instance_url`` (cannot be renewed);
- legacy username + password + extra ``security_token`` (SOAP ``login()``, which Salesforce is
  retiring).

Every API call of an extraction goes through :meth:`ResilientSalesforce.call` (simple-salesforce has
no retry of its own), which retries through tenacity:

- ``401 INVALID_SESSION_ID``: log in again and retry the call once;
- ``5xx``, ``429``, ``403 REQUEST_LIMIT_EXCEEDED`` (concurrency), read timeouts, dropped connections
  and broken or truncated bodies: exponential backoff with jitter, honouring ``Retry-After``, up to
  ``max_attempts``;
- connection refused, DNS failure, connect timeout: up to ``connect_attempts`` (an unreachable host
  fails within a minute with the default settings);
- never retried: bad credentials (``invalid_client``, ``invalid_grant``, ``INVALID_LOGIN``),
  ``400`` (``INVALID_FIELD`` names the field), other ``4xx``, an untrusted TLS certificate, and the
  daily API limit (``TotalRequests``).

Each final error is one line that names the URL, the attempts and the connection id.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import requests
import urllib3.exceptions
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.api import DEFAULT_API_VERSION
from simple_salesforce.bulk2 import JobState
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from calltrail.settings import SalesforceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

# Estimated API requests of one extraction, checked against the org's remaining daily budget.
# REST: at least the /limits read, the COUNT(), the query and its follow-up pages of up to
# REST_PAGE_RECORDS with room for retries; Bulk API 2.0: the job lists, creation, status polls and
# result pages with room for one retried job.
REST_EXTRACTION_CALLS = 10
BULK_EXTRACTION_CALLS = 60
REST_PAGE_RECORDS = 2000


class SalesforceExtractionError(RuntimeError):
    """Extraction failed; the message says why and what to do.

    ``recoverable`` tells a scheduler whether running the task again later may succeed (an outage,
    a limit) or cannot until someone changes something (credentials, the connection, a field).
    """

    recoverable = False


class FieldNotReadable(SalesforceExtractionError):
    pass


class SessionRejected(SalesforceExtractionError):
    pass


class AuthenticationFailed(SalesforceExtractionError):
    """The connection's credentials were refused at login; retrying cannot help."""


class ConnectionMisconfigured(SalesforceExtractionError):
    """The Airflow connection does not hold a usable combination of fields."""


class RequestLimitExceeded(SalesforceExtractionError):
    recoverable = True


class DailyApiLimitExceeded(RequestLimitExceeded):
    """The org's rolling 24-hour API request limit is used up (it frees up over hours)."""


class ApiBudgetTooLow(RequestLimitExceeded):
    """/limits says the remaining daily API requests cannot cover this run and the reserve."""


class SalesforceUnavailable(SalesforceExtractionError):
    recoverable = True


class CertificateNotTrusted(SalesforceUnavailable):
    """The TLS certificate is not trusted: a CA bundle or proxy to fix, not an outage."""

    recoverable = False


# --- logging in --------------------------------------------------------------------------------


class _TimeoutSession(requests.Session):
    """A requests session with a default (connect, read) timeout on every request, login included."""

    def __init__(self, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.default_timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        return super().request(method, url, *args, **kwargs)


def _extra(extras: dict[str, Any], name: str) -> Any:
    """An extra by its short name, or the ``extra__salesforce__`` form older Airflow UIs wrote."""
    value = extras.get(name)
    if value in (None, ""):
        value = extras.get(f"extra__salesforce__{name}")
    return value if value not in ("", None) else None


@dataclass(frozen=True)
class Credentials:
    """What the Airflow connection holds, reduced to one login mode."""

    conn_id: str
    mode: str  # client_credentials | jwt_bearer | access_token | password (legacy)
    login: dict[str, Any]
    version: str
    proxies: dict[str, str] | None
    login_url: str

    @property
    def renewable(self) -> bool:
        return self.mode != "access_token"


def credentials_from_connection(conn_id: str, login: str | None, password: str | None,
                                extras: dict[str, Any]) -> Credentials:
    """Pick the login mode from the connection's fields (see docs/salesforce-connection.md)."""
    domain = _extra(extras, "domain")
    version = str(_extra(extras, "version") or DEFAULT_API_VERSION).removeprefix("v")
    proxies = _extra(extras, "proxies")
    if isinstance(proxies, str):
        proxies = json.loads(proxies)
    consumer_key = _extra(extras, "consumer_key")
    consumer_secret = _extra(extras, "consumer_secret")
    private_key = _extra(extras, "private_key")
    private_key_file = _extra(extras, "private_key_file_path")
    access_token = _extra(extras, "access_token")
    security_token = _extra(extras, "security_token")
    host = f"https://{domain or 'login'}.salesforce.com"

    def made(mode: str, login_url: str, **kwargs: Any) -> Credentials:
        return Credentials(conn_id, mode, kwargs, version, proxies, login_url)

    if access_token:
        instance_url = _extra(extras, "instance_url")
        if not instance_url:
            raise ConnectionMisconfigured(
                f"connection `{conn_id}` has an access_token but no instance_url extra; "
                "add the org's URL, e.g. https://yourorg.my.salesforce.com"
            )
        parsed = urlparse(instance_url if "//" in instance_url else f"https://{instance_url}")
        return made("access_token", instance_url, session_id=access_token, instance=parsed.netloc)
    if consumer_key and (private_key or private_key_file):
        if not login:
            raise ConnectionMisconfigured(
                f"connection `{conn_id}` has a consumer_key and a private key (JWT bearer) but no login: "
                "set Username to the integration user the connected app is pre-authorised for"
            )
        return made("jwt_bearer", f"{host}/services/oauth2/token", username=login, consumer_key=consumer_key,
                    privatekey=private_key, privatekey_file=private_key_file, domain=domain)
    if login and password and (security_token is not None or not (consumer_key and consumer_secret)):
        # Legacy SOAP login(); without a security token it works only from the org's trusted IP ranges.
        return made("password", f"{host}/services/Soap/u/{version}", username=login, password=password,
                    security_token=security_token or "", domain=domain, client_id=_extra(extras, "client_id"))
    if login and password:
        return made("password", f"{host}/services/oauth2/token", username=login, password=password,
                    consumer_key=consumer_key, consumer_secret=consumer_secret, domain=domain)
    if consumer_key and consumer_secret:
        if not domain or domain in ("login", "test"):
            raise ConnectionMisconfigured(
                f"connection `{conn_id}` uses the client-credentials flow (consumer_key + consumer_secret) but "
                f"its domain extra is {domain!r}: set it to the org's My Domain without .salesforce.com, "
                "e.g. acme.my (Salesforce refuses this flow at login.salesforce.com)"
            )
        return made("client_credentials", f"{host}/services/oauth2/token", consumer_key=consumer_key,
                    consumer_secret=consumer_secret, domain=domain)
    raise ConnectionMisconfigured(
        f"connection `{conn_id}` holds no usable credentials: give consumer_key + consumer_secret + domain "
        "(client credentials), login + consumer_key + private_key (JWT bearer), access_token + instance_url, "
        "or (legacy) login + password + security_token; see docs/salesforce-connection.md"
    )


class SalesforceConnector:
    """A callable that logs in as the Airflow connection says and returns a ready client.

    Every call logs in afresh, so :class:`ResilientSalesforce` renews an expired token by calling it
    again. The login is simple-salesforce's own (``SalesforceLogin``: SOAP, JWT bearer, client
    credentials); the client it returns holds the token, and renewal stays in one place (here)
    instead of simple-salesforce's silent re-login loop, which only covers part of the API.
    """

    def __init__(self, conn_id: str, *, connect_timeout: float = SalesforceSettings.connect_timeout_seconds,
                 read_timeout: float = SalesforceSettings.read_timeout_seconds,
                 credentials: Credentials | None = None) -> None:
        self.conn_id = conn_id
        self.timeout = (connect_timeout, read_timeout)
        self._credentials = credentials

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            from airflow.providers.salesforce.hooks.salesforce import SalesforceHook

            conn = SalesforceHook.get_connection(self.conn_id)
            self._credentials = credentials_from_connection(self.conn_id, conn.login, conn.password,
                                                            conn.extra_dejson)
        return self._credentials

    @property
    def login_url(self) -> str:
        return self.credentials.login_url

    @property
    def renewable(self) -> bool:
        return self.credentials.renewable

    def __call__(self) -> Salesforce:
        c = self.credentials
        session = _TimeoutSession(self.timeout)
        if c.proxies:
            session.proxies.update(c.proxies)
        if c.mode == "access_token":
            token, instance = c.login["session_id"], c.login["instance"]
        else:
            token, instance = SalesforceLogin(session=session, proxies=c.proxies, sf_version=c.version, **c.login)
            log.info("logged in to Salesforce (%s) as connection %s", c.mode, c.conn_id)
        return Salesforce(session_id=token, instance=instance, version=c.version, session=session)


def connect(conn_id: str, *, connect_timeout: float = SalesforceSettings.connect_timeout_seconds,
            read_timeout: float = SalesforceSettings.read_timeout_seconds) -> Salesforce:
    """A logged-in Salesforce client from the Airflow connection ``conn_id``.

    TLS trust follows ``REQUESTS_CA_BUNDLE`` as for every ``requests`` client.
    """
    return SalesforceConnector(conn_id, connect_timeout=connect_timeout, read_timeout=read_timeout)()


# --- classifying errors ------------------------------------------------------------------------


def error_codes(exc: SalesforceError) -> list[str]:
    content = exc.content
    if isinstance(content, list):
        return [str(item.get("errorCode", "")) for item in content if isinstance(item, dict)]
    if isinstance(content, dict):
        return [str(content.get("errorCode", ""))]
    return []


def error_text(exc: SalesforceError) -> str:
    """What Salesforce said, on one line (INVALID_FIELD messages quote the query over several)."""
    if isinstance(exc, SalesforceAuthenticationFailed):
        text = f"{exc.code}: {exc.auth_message}"
    elif isinstance(exc.content, list):
        text = " ".join(str(item.get("message", item)) if isinstance(item, dict) else str(item)
                        for item in exc.content)
    elif isinstance(exc.content, bytes):
        text = exc.content.decode(errors="replace")
    else:
        text = str(exc.content)
    return " ".join(text.split())


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the errors behind it (requests -> urllib3 -> socket), outermost first."""
    chain = [exc]
    while len(chain) < 12:
        seen = chain[-1]
        nxt = seen.reason if isinstance(seen, urllib3.exceptions.MaxRetryError) else None
        if nxt is None and seen.args and isinstance(seen.args[0], BaseException):
            nxt = seen.args[0]
        nxt = nxt or seen.__cause__ or seen.__context__
        if nxt is None or nxt in chain:
            break
        chain.append(nxt)
    return chain


def _root_cause(exc: BaseException) -> BaseException:
    return _causes(exc)[-1]


def _cannot_connect(exc: BaseException) -> str | None:
    """How the host could not be reached at all (refused, DNS, connect timeout), else None."""
    if isinstance(exc, requests.exceptions.SSLError):
        return None
    if isinstance(exc, requests.ConnectTimeout):
        return "did not accept the connection in time"
    if isinstance(exc, requests.exceptions.ProxyError):
        return "could not be reached through the proxy"
    if not isinstance(exc, requests.ConnectionError):
        return None
    chain = _causes(exc)
    if any(isinstance(e, (urllib3.exceptions.NameResolutionError, socket.gaierror)) for e in chain):
        return "could not be resolved (DNS)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "refused the connection"
    if any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        return "could not be reached"
    return None


def _auth_refused(exc: BaseException) -> bool:
    """Credentials refused at login: a 4xx answer, an OAuth error or a SOAP login fault."""
    if not isinstance(exc, SalesforceAuthenticationFailed):
        return False
    code = exc.code
    if isinstance(code, int):
        return code < 500
    return True


def _daily_limit(exc: BaseException) -> bool:
    return (isinstance(exc, SalesforceRefusedRequest) and "REQUEST_LIMIT_EXCEEDED" in error_codes(exc)
            and "totalrequests" in error_text(exc).lower().replace(" ", ""))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, SalesforceAuthenticationFailed):
        return not _auth_refused(exc)
    if isinstance(exc, SalesforceRefusedRequest):
        return "REQUEST_LIMIT_EXCEEDED" in error_codes(exc) and not _daily_limit(exc)
    if isinstance(exc, SalesforceGeneralError):
        return exc.status >= 500 or exc.status == 429
    if isinstance(exc, requests.exceptions.SSLError):
        return False
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                            requests.exceptions.ContentDecodingError, json.JSONDecodeError,
                            urllib3.exceptions.ProtocolError))


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _origin(url: str | None) -> str:
    if not url:
        return "Salesforce"
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}" if parsed.netloc else url


# What the API and the network raise; anything else (a calltrail error, a bug) passes through as is.
_API_ERRORS = (SalesforceError, requests.RequestException, json.JSONDecodeError, urllib3.exceptions.HTTPError)


# --- the resilient client ----------------------------------------------------------------------


class ResilientSalesforce:
    """Holds the current client, re-creates it with ``factory`` when the session expires, and
    retries what can recover."""

    def __init__(
        self,
        factory: Callable[[], Salesforce],
        *,
        max_attempts: int = SalesforceSettings.max_attempts,  # the settings' defaults
        connect_attempts: int = SalesforceSettings.connect_attempts,
        backoff_seconds: float = SalesforceSettings.backoff_seconds,
        max_backoff_seconds: float = SalesforceSettings.max_backoff_seconds,
        api_reserve_percent: float = SalesforceSettings.api_reserve_percent,
        watched_fields: Sequence[str] = (),
        conn_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._factory = factory
        self._sf: Salesforce | None = None
        self.max_attempts = max_attempts
        self.connect_attempts = min(connect_attempts, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._backoff = wait_exponential_jitter(multiplier=backoff_seconds, max=max_backoff_seconds,
                                                jitter=backoff_seconds)
        self.api_reserve_percent = api_reserve_percent
        self.watched_fields = tuple(watched_fields)
        self.conn_id = conn_id or getattr(factory, "conn_id", None) or SalesforceSettings.conn_id
        self._sleep = sleep
        self._retry_after: float | None = None
        self.retries = 0
        self.reauthentications = 0
        self.logins = 0
        self.delays: list[float] = []  # every backoff requested, in order (the operator's log says the same)

    @classmethod
    def from_settings(cls, sf: SalesforceSettings, factory: Callable[[], Salesforce] | None = None,
                      **kwargs: Any) -> ResilientSalesforce:
        """The client an extraction uses: login and retry behaviour from calltrail's settings."""
        if factory is None:
            factory = SalesforceConnector(sf.conn_id, connect_timeout=sf.connect_timeout_seconds,
                                          read_timeout=sf.read_timeout_seconds)
        return cls(factory, max_attempts=sf.max_attempts, connect_attempts=sf.connect_attempts,
                   backoff_seconds=sf.backoff_seconds, max_backoff_seconds=sf.max_backoff_seconds,
                   api_reserve_percent=sf.api_reserve_percent, conn_id=sf.conn_id,
                   watched_fields=(sf.bizible_id_field, sf.touchpoint_date_field), **kwargs)

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self.logins += 1
            sf = self._factory()
            sf.session.hooks.setdefault("response", []).append(self._remember_retry_after)
            self._sf = sf
        return self._sf

    def _remember_retry_after(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code >= 400:
            self._retry_after = _retry_after_seconds(response.headers.get("Retry-After"))

    # tenacity policy ---------------------------------------------------------------------------

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if exc is None:
            return True
        if self._retry_after is not None and self._retry_after > self.max_backoff_seconds:
            return True
        limit = self.connect_attempts if _cannot_connect(exc) else self.max_attempts
        return state.attempt_number >= limit

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, or what ``Retry-After`` asks (plus a little jitter)."""
        if self._retry_after is not None:
            return self._retry_after + random.uniform(0, min(1.0, self.backoff_seconds))
        return self._backoff(state)

    def _before_sleep(self, what: str) -> Callable[[RetryCallState], None]:
        def log_it(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            delay = state.upcoming_sleep
            self.retries += 1
            self.delays.append(delay)
            log.warning("%s: %s (attempt %d); retrying in %.1f s%s", what, _describe(exc), state.attempt_number,
                        delay, " as Retry-After asks" if self._retry_after is not None else "")
        return log_it

    # the call ------------------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """``fn(client)`` with renewal on 401 and retries of what can recover; one clear error otherwise."""
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            self._retry_after = None
            try:
                return fn(self.sf)
            except SalesforceExpiredSession as exc:
                if not getattr(self._factory, "renewable", True):
                    raise SessionRejected(self._session_message(what, exc, renewed=False)) from exc
                log.warning("%s: session expired or invalid (401 INVALID_SESSION_ID); logging in again", what)
                self._sf = None
                self.reauthentications += 1
            try:
                return fn(self.sf)
            except SalesforceExpiredSession as exc:
                raise SessionRejected(self._session_message(what, exc, renewed=True)) from exc

        retrying = Retrying(stop=self._stop, wait=self._wait, retry=retry_if_exception(_retryable),
                            sleep=self._sleep, before_sleep=self._before_sleep(what), reraise=True)
        try:
            return retrying(attempt)
        except _API_ERRORS as exc:
            raise self._final_error(what, exc, attempts) from exc

    def _session_message(self, what: str, exc: SalesforceError, *, renewed: bool) -> str:
        if not renewed:
            return (f"{what}: Salesforce at {_origin(exc.url)} rejected the access token (INVALID_SESSION_ID) "
                    f"and the connection `{self.conn_id}` holds no way to log in again: mint a new token and "
                    "update its 'access_token' extra, or switch it to client credentials or JWT bearer "
                    f"(docs/salesforce-connection.md). Salesforce said: {error_text(exc)}")
        return (f"{what}: Salesforce at {_origin(exc.url)} rejected the session (INVALID_SESSION_ID) even right "
                f"after logging in again with the connection `{self.conn_id}`; check the connected app's "
                f"session policies and IP restrictions for the integration user. Salesforce said: {error_text(exc)}")

    def _final_error(self, what: str, exc: BaseException, attempts: int) -> SalesforceExtractionError:
        conn = f"check the connection `{self.conn_id}`"
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, SalesforceAuthenticationFailed):
            url = getattr(self._factory, "login_url", None) or "the login endpoint"
            if _auth_refused(exc):
                return AuthenticationFailed(
                    f"Salesforce at {url} refused the credentials ({error_text(exc)}); not retried: {conn} "
                    "(consumer key and secret, private key, user, or the connected app's policies)")
            return SalesforceUnavailable(f"Salesforce login at {url} failed {tries} ({error_text(exc)}): {conn}")
        if isinstance(exc, SalesforceMalformedRequest):
            field_error = self._field_error(what, exc)
            if field_error:
                return field_error
            return SalesforceExtractionError(f"{what}: Salesforce at {_origin(exc.url)} refused the request "
                                             f"(400, not retried): {error_text(exc)}")
        if isinstance(exc, SalesforceRefusedRequest):
            if _daily_limit(exc):
                return DailyApiLimitExceeded(
                    f"{what}: Salesforce at {_origin(exc.url)} says the org's daily API request limit is used up "
                    "(REQUEST_LIMIT_EXCEEDED, TotalRequests; rolling 24 hours); not retried. The run stored "
                    "nothing and the next run extracts the same Tasks once requests are free again; see "
                    f"Setup > Company Information > API Requests. Salesforce said: {error_text(exc)}")
            if "REQUEST_LIMIT_EXCEEDED" in error_codes(exc):
                return RequestLimitExceeded(
                    f"{what}: Salesforce at {_origin(exc.url)} refused the request (REQUEST_LIMIT_EXCEEDED) {tries}; "
                    "the org's concurrent or 24-hour API limit is used up: the run failed without advancing, and "
                    f"the next run extracts the same Tasks. Salesforce said: {error_text(exc)}")
            return SalesforceExtractionError(
                f"{what}: Salesforce at {_origin(exc.url)} refused the request (403, not retried): {error_text(exc)}. "
                "Check the integration user's profile and permission sets.")
        if isinstance(exc, SalesforceGeneralError):
            if self._retry_after is not None and self._retry_after > self.max_backoff_seconds:
                return SalesforceUnavailable(
                    f"{what}: Salesforce at {_origin(exc.url)} answered HTTP {exc.status} and asked to wait "
                    f"{self._retry_after:.0f} s (Retry-After), more than CALLTRAIL_SF_MAX_BACKOFF_SECONDS="
                    f"{self.max_backoff_seconds:g}; re-run later. Salesforce said: {error_text(exc)}")
            if exc.status >= 500 or exc.status == 429:
                return SalesforceUnavailable(
                    f"{what}: Salesforce at {_origin(exc.url)} answered HTTP {exc.status} {tries}; giving up. "
                    "Check https://status.salesforce.com and re-run: nothing was stored for this run.")
            return SalesforceExtractionError(f"{what}: Salesforce at {_origin(exc.url)} answered HTTP {exc.status} "
                                             f"(not retried): {error_text(exc)}")
        if isinstance(exc, SalesforceError):
            return SalesforceExtractionError(f"{what}: Salesforce at {_origin(exc.url)} answered HTTP {exc.status} "
                                             f"(not retried): {error_text(exc)}")
        request = getattr(exc, "request", None)
        url = _origin(getattr(request, "url", None) or (self._sf.base_url if self._sf is not None else None)
                      or getattr(self._factory, "login_url", None))
        if isinstance(exc, requests.exceptions.SSLError):
            return CertificateNotTrusted(
                f"Salesforce at {url}: the TLS certificate is not trusted ({_root_cause(exc)}); not retried: {conn}, "
                "and for a proxy that inspects TLS set REQUESTS_CA_BUNDLE to its CA bundle")
        how = _cannot_connect(exc)
        if how:
            return SalesforceUnavailable(f"Salesforce at {url} {how} {tries}: {conn}")
        return SalesforceUnavailable(f"{what}: Salesforce at {url} failed {tries}: {_describe(exc)}: {conn} "
                                     "and https://status.salesforce.com")

    def _field_error(self, what: str, exc: SalesforceError) -> FieldNotReadable | None:
        text = error_text(exc)
        if "INVALID_FIELD" not in error_codes(exc) and "No such column" not in text:
            return None
        named = [f for f in self.watched_fields if f.lower() in text.lower()]
        column = re.search(r"No such column '([^']+)' on entity '([^']+)'", text)
        if column and column[2].lower() != "task":
            return FieldNotReadable(
                f"{what}: field {column[1]} is not readable on {column[2]} (INVALID_FIELD). Grant the integration "
                f"user read access to {column[2]} and field-level read access to {column[1]} (a profile or "
                f"permission set). Salesforce said: {text}"
            )
        field = named[0] if named else "a selected field"
        return FieldNotReadable(
            f"{what}: field {field} is not readable on Task (INVALID_FIELD). Install the Marketo Measure "
            "(Bizible) package 6.7+ or grant the integration user field-level read access to it; if the "
            "call-tracking vendor writes another field, set CALLTRAIL_SF_BIZIBLE_ID_FIELD / "
            f"CALLTRAIL_SF_TOUCHPOINT_DATE_FIELD. Salesforce said: {text}"
        )

    # the daily API budget --------------------------------------------------------------------------

    def read_api_budget(self) -> ApiBudget | None:
        """Read ``/limits``: the org's daily API requests left and the reserve kept for its other
        integrations; None (with a warning) when the user may not read it or it has no figures."""

        def read(sf: Salesforce) -> Any:
            try:
                return sf.limits()
            except SalesforceRefusedRequest as exc:
                if "REQUEST_LIMIT_EXCEEDED" in error_codes(exc):
                    raise
                log.warning("cannot read Salesforce /limits (%s): the integration user lacks the View Setup and "
                            "Configuration permission; the daily API budget is not checked", error_text(exc))
                return None

        limits = self.call("read API limits", read)
        if limits is None:
            return None
        daily = limits.get("DailyApiRequests") or {}
        try:
            maximum, remaining = int(daily["Max"]), int(daily["Remaining"])
        except (KeyError, TypeError, ValueError):
            log.warning("Salesforce /limits has no DailyApiRequests (%s); API budget not checked", daily)
            return None
        return ApiBudget(maximum, remaining, math.ceil(maximum * self.api_reserve_percent / 100),
                         self.api_reserve_percent, self.conn_id)


@dataclass(frozen=True)
class ApiBudget:
    """The org's daily API requests as ``/limits`` said at the start of a run."""

    maximum: int
    remaining: int
    reserve: int
    reserve_percent: float
    conn_id: str

    def as_dict(self, expected_calls: int) -> dict[str, int]:
        return {"max": self.maximum, "remaining": self.remaining, "reserve": self.reserve,
                "expected": expected_calls}

    def require(self, expected_calls: int, done: str) -> None:
        """Fail when ``expected_calls`` would eat into the reserve; ``done`` says what the run did so far."""
        if self.remaining - expected_calls < self.reserve:
            raise ApiBudgetTooLow(
                f"Salesforce daily API budget too low for this run: {self.remaining} of {self.maximum} requests "
                f"left, the run needs about {expected_calls} and CALLTRAIL_SF_API_RESERVE_PERCENT="
                f"{self.reserve_percent:g} keeps {self.reserve} for the org's other integrations (connection "
                f"`{self.conn_id}`). {done}; the next run extracts the same Tasks once the rolling 24-hour "
                "window frees requests, or lower the reserve."
            )
        log.info("Salesforce daily API requests: %d of %d left; this run needs about %d, reserve %d",
                 self.remaining, self.maximum, expected_calls, self.reserve)


# --- Bulk API 2.0 job housekeeping --------------------------------------------------------------


def list_query_jobs(sf: Salesforce) -> Iterator[dict[str, Any]]:
    """Every Bulk API 2.0 query job of the org (``GET jobs/query``, 1,000 per page)."""
    params = {"jobType": "V2Query"}
    while True:
        page = sf.restful("jobs/query", params=params) or {}
        yield from page.get("records", [])
        locator = parse_qs(urlparse(page.get("nextRecordsUrl") or "").query).get("queryLocator")
        if page.get("done", True) or not locator:
            return
        params = {"jobType": "V2Query", "queryLocator": locator[0]}


def discard_query_job(sf: Salesforce, job: dict[str, Any]) -> None:
    """Abort (if still running) and delete a job left by a failed attempt."""
    path = f"jobs/query/{job['id']}"
    log.warning("removing Bulk API 2.0 job %s (%s) left by a failed attempt", job["id"], job.get("state"))
    if job.get("state") in (JobState.upload_complete.value, JobState.in_progress.value):
        try:
            sf.restful(path, method="PATCH", data=json.dumps({"state": JobState.aborted.value}))
        except SalesforceMalformedRequest:
            pass  # it finished meanwhile: deleting it is enough
    try:
        sf.restful(path, method="DELETE")
    except SalesforceResourceNotFound:
        pass


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no error"
    if isinstance(exc, SalesforceError) and not isinstance(exc, SalesforceAuthenticationFailed):
        codes = [c for c in error_codes(exc) if c]
        return f"HTTP {exc.status}" + (f" {', '.join(codes)}" if codes else "")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "response broken off mid-body (ChunkedEncodingError)"
    if isinstance(exc, json.JSONDecodeError):
        return "truncated or unreadable response body"
    how = _cannot_connect(exc)
    return how or f"{type(exc).__name__}: {exc}"
