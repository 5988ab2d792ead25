"""A Salesforce session that survives what the API throws at a long extraction.

- ``401 INVALID_SESSION_ID``: re-authenticate once, then retry the call.
- ``403 REQUEST_LIMIT_EXCEEDED``, ``5xx`` and connection errors: retry with exponential backoff,
  then fail with a message that says what to do.
- ``400 INVALID_FIELD`` (or "No such column") on a configured field: fail at once, naming the field
  and the likely cause.

simple-salesforce itself has no retry, so every API call of an extraction goes through
:meth:`ResilientSalesforce.call`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class SalesforceExtractionError(RuntimeError):
    """Extraction failed; the message says why and what to do."""


class FieldNotReadable(SalesforceExtractionError):
    pass


class SessionRejected(SalesforceExtractionError):
    pass


class RequestLimitExceeded(SalesforceExtractionError):
    pass


class SalesforceUnavailable(SalesforceExtractionError):
    pass


def connect(conn_id: str) -> Salesforce:
    """A Salesforce client from the Airflow connection ``conn_id``.

    Three modes, chosen by what the connection holds:

    - username (login) + password + extra ``security_token`` (and optional ``domain``);
    - JWT bearer: login + extras ``consumer_key`` and ``private_key`` / ``private_key_file_path``;
    - an access token minted elsewhere: extras ``instance_url`` and ``access_token``.

    TLS trust follows ``REQUESTS_CA_BUNDLE`` as for every ``requests`` client.
    """
    from airflow.providers.salesforce.hooks.salesforce import SalesforceHook

    hook = SalesforceHook(salesforce_conn_id=conn_id)
    extras = hook.get_connection(conn_id).extra_dejson
    token = extras.get("access_token")
    if token:
        if not extras.get("instance_url"):
            raise SalesforceExtractionError(
                f"connection {conn_id!r} has an access_token but no instance_url extra; "
                "add the org's URL, e.g. https://yourorg.my.salesforce.com"
            )
        hook = SalesforceHook(salesforce_conn_id=conn_id, session_id=token)
    return hook.get_conn()


def error_codes(exc: SalesforceError) -> list[str]:
    content = exc.content
    if isinstance(content, list):
        return [str(item.get("errorCode", "")) for item in content if isinstance(item, dict)]
    if isinstance(content, dict):
        return [str(content.get("errorCode", ""))]
    return []


def error_text(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list):
        return " ".join(str(item.get("message", item)) if isinstance(item, dict) else str(item) for item in content)
    return str(content)


class ResilientSalesforce:
    """Holds the current client and re-creates it with ``factory`` when the session expires."""

    def __init__(
        self,
        factory: Callable[[], Salesforce],
        *,
        max_attempts: int = 5,
        backoff_seconds: float = 2.0,
        watched_fields: Sequence[str] = (),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._factory = factory
        self._sf: Salesforce | None = None
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.watched_fields = tuple(watched_fields)
        self._sleep = sleep
        self.retries = 0
        self.reauthentications = 0

    @property
    def sf(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._factory()
        return self._sf

    def _backoff(self, what: str, attempt: int, reason: str) -> None:
        delay = min(self.backoff_seconds * 2 ** (attempt - 1), 300.0)
        log.warning("%s: %s (attempt %d of %d); retrying in %.1f s", what, reason, attempt, self.max_attempts, delay)
        self.retries += 1
        self._sleep(delay)

    def call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        reauthenticated = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(self.sf)
            except SalesforceExpiredSession as exc:
                if reauthenticated:
                    raise SessionRejected(
                        f"{what}: Salesforce rejected the session (INVALID_SESSION_ID) even after "
                        "re-authenticating. For an access-token connection mint a new token and update "
                        "the 'access_token' extra; otherwise check the user's password, security token "
                        f"or connected app. Salesforce said: {error_text(exc)}"
                    ) from exc
                log.warning("%s: session expired or invalid; re-authenticating", what)
                self._sf = None
                self.reauthentications += 1
                reauthenticated = True
                attempt -= 1  # re-authentication is not a failed attempt
                continue
            except SalesforceMalformedRequest as exc:
                self._raise_field_error(what, exc)
                raise SalesforceExtractionError(f"{what}: Salesforce refused the request: {error_text(exc)}") from exc
            except SalesforceRefusedRequest as exc:
                if "REQUEST_LIMIT_EXCEEDED" not in error_codes(exc) + [error_text(exc)]:
                    raise SalesforceExtractionError(
                        f"{what}: Salesforce refused the request (403): {error_text(exc)}. "
                        "Check the integration user's profile and permission sets."
                    ) from exc
                if attempt >= self.max_attempts:
                    raise RequestLimitExceeded(
                        f"{what}: Salesforce API request limit exceeded (REQUEST_LIMIT_EXCEEDED) after "
                        f"{attempt} attempts. The org's rolling 24-hour API limit is used up; the run "
                        "failed without advancing, and the next run (or a retry once the limit resets) "
                        f"extracts the same interval. Salesforce said: {error_text(exc)}"
                    ) from exc
                self._backoff(what, attempt, "REQUEST_LIMIT_EXCEEDED")
            except SalesforceGeneralError as exc:
                if exc.status < 500:
                    raise SalesforceExtractionError(
                        f"{what}: unexpected HTTP {exc.status} from Salesforce: {error_text(exc)}"
                    ) from exc
                if attempt >= self.max_attempts:
                    raise SalesforceUnavailable(
                        f"{what}: Salesforce answered HTTP {exc.status} {attempt} times in a row; giving up. "
                        "Check https://status.salesforce.com and re-run the interval."
                    ) from exc
                self._backoff(what, attempt, f"HTTP {exc.status}")
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.max_attempts:
                    raise SalesforceUnavailable(
                        f"{what}: cannot reach Salesforce after {attempt} attempts: {exc}"
                    ) from exc
                self._backoff(what, attempt, f"connection error {type(exc).__name__}")

    def _raise_field_error(self, what: str, exc: SalesforceError) -> None:
        text = error_text(exc)
        codes = error_codes(exc)
        if "INVALID_FIELD" not in codes and "No such column" not in text:
            return
        named = [f for f in self.watched_fields if f.lower() in text.lower()]
        field = named[0] if named else "a selected field"
        raise FieldNotReadable(
            f"{what}: field {field} is not readable on Task (INVALID_FIELD). Install the Marketo Measure "
            "(Bizible) package 6.7+ or grant the integration user field-level read access to it; if the "
            "call-tracking vendor writes another field, set CALLTRAIL_SF_BIZIBLE_ID_FIELD / "
            f"CALLTRAIL_SF_TOUCHPOINT_DATE_FIELD. Salesforce said: {text}"
        ) from exc


def bulk2_client(sf: Salesforce, object_name: str = "Task") -> Any:
    """The Bulk API 2.0 client of simple-salesforce for ``object_name`` (pinned version 1.12.10)."""
    return getattr(sf.bulk2, object_name)._client
