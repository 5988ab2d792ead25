"""A local fake of the Salesforce REST and Bulk API 2.0, over HTTPS with a self-signed certificate.

It speaks the wire format simple-salesforce expects: ``query``/``queryAll`` pages with
``nextRecordsUrl``, Bulk 2.0 query jobs with CSV result pages, ``Sforce-Locator`` and
``Sforce-NumberOfRecords`` headers, the job list, abort and delete, ``/limits`` with
``DailyApiRequests`` (every API request counts against it), and Salesforce's JSON error bodies
(``[{"message": ..., "errorCode": ...}]``). Logins: SOAP ``login()``, and ``/services/oauth2/token``
for the client-credentials grant (HTTP Basic consumer key and secret, only on the org's My Domain)
and the JWT bearer grant, each minting a fresh access token. Field names in SOQL are matched
ignoring case and answered in their canonical case, as Salesforce does. Faults are scripted per
endpoint: an error answer (optionally with ``Retry-After``, optionally after the work was done, as a
Bulk job created behind a 500), or a chunked body broken off mid-stream; or per page of a REST query
(an error, a session ending, a hold). ``SELECT COUNT()`` answers ``totalSize`` and no records; it is
a ``query``/``queryAll`` request like any other, so an endpoint's fault hits it first (``after``
lets it through). ``hard_delete`` removes a record beyond the Recycle Bin.

Besides Tasks (``records``), the org holds Leads, Contacts, Opportunities and
OpportunityContactRoles (``objects``, by API name), with the fields of :data:`SCHEMA`: a query that
names another field gets ``INVALID_FIELD`` as from Salesforce, and ``CurrencyIsoCode`` exists only
while ``multi_currency`` is on (as in a real org). ``sobjects/<Object>/describe`` lists the fields.
"""

from __future__ import annotations

import csv
import io
import json
import operator
import re
import select
import socket
import socketserver
import ssl
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlparse

import trustme

_SOQL = re.compile(r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
                   r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>\w+))?\s*$", re.IGNORECASE | re.DOTALL)
_CONDITION = re.compile(r"^(\w+)\s*(>=|<=|>|<|=)\s*(\S+)$")

# The fake org's fields of the objects besides Task (Task's are whatever its records hold). A few
# fields calltrail does not read are there too, as in a real org.
SCHEMA: dict[str, tuple[str, ...]] = {
    "Lead": ("Id", "FirstName", "LastName", "Email", "Company", "CreatedDate", "IsConverted", "ConvertedContactId",
             "ConvertedAccountId", "ConvertedDate", "LastModifiedDate", "SystemModstamp", "IsDeleted"),
    "Contact": ("Id", "FirstName", "LastName", "Email", "AccountId", "CreatedDate", "LastModifiedDate",
                "SystemModstamp", "IsDeleted"),
    "Opportunity": ("Id", "Name", "AccountId", "Amount", "StageName", "CreatedDate", "CloseDate", "IsClosed",
                    "IsWon", "LastModifiedDate", "SystemModstamp", "IsDeleted"),
    "OpportunityContactRole": ("Id", "OpportunityId", "ContactId", "Role", "IsPrimary", "CreatedDate",
                               "LastModifiedDate", "SystemModstamp", "IsDeleted"),
}
# Objects that gain CurrencyIsoCode when multi-currency is on.
MULTI_CURRENCY_OBJECTS = ("Lead", "Contact", "Opportunity")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))


@dataclass
class Fault:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    after_work: bool = False  # do what the request asks, then answer with the error
    broken_body: bool = False  # answer 200 with the real body, cut off half-way
    chunked: bool = True  # a broken body is sent chunked, else with the full Content-Length
    stall_seconds: float = 0.0  # wait this long before answering normally (a client timeout)
    passes: bool = False  # answer this request normally (lets a fault wait for the n-th request)


@dataclass
class FakeSalesforce:
    """State of the fake org. ``records`` are Task records as the REST API returns them; ``objects``
    the records of the other objects, by API name."""

    records: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    multi_currency: bool = True
    readable_fields: set[str] | None = None  # None: every field is readable
    page_size: int = 2000
    tokens: set[str] = field(default_factory=lambda: {"token-1"})
    faults: dict[str, deque[Fault]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    soql_seen: list[str] = field(default_factory=list)
    bulk_jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    polls_before_complete: int = 1
    # Login (username-password SOAP and JWT bearer): who may log in, and the org's instance host.
    users: dict[str, str] = field(default_factory=dict)  # username -> password + security token
    jwt_public_key: bytes | None = None
    instance_host: str = "acme.my.salesforce.com"
    logins: list[str] = field(default_factory=list)
    # OAuth client credentials: consumer key -> consumer secret of connected apps with that flow on.
    clients: dict[str, str] = field(default_factory=dict)
    issued: int = 0
    daily_api_max: int = 15000
    daily_api_remaining: int = 15000
    sessions_expire_after: int | None = None  # authorised API requests until every session expires
    served_at: str = ""  # https://127.0.0.1:<port> once a FakeSalesforceServer serves this org
    # Per page of a REST query (see fail_page, expire_session_at_page, hold_page) and hard deletes.
    page_faults: dict[int, deque[Fault]] = field(default_factory=dict)
    session_revocations: dict[int, str] = field(default_factory=dict)  # page -> the only token valid from then
    page_holds: dict[int, tuple[threading.Event, threading.Event]] = field(default_factory=dict)
    deleted_for_good: list[str] = field(default_factory=list)

    def fail(self, endpoint: str, status: int, error_code: str, message: str, times: int = 1, *,
             headers: dict[str, str] | None = None, after_work: bool = False) -> None:
        """Answer the next ``times`` requests to ``endpoint`` (query, queryAll, more, limits, bulk_create,
        bulk_status, bulk_results, bulk_list) with this Salesforce error."""
        queue = self.faults.setdefault(endpoint, deque())
        for _ in range(times):
            queue.append(Fault(status, [{"message": message, "errorCode": error_code}], dict(headers or {}),
                               after_work))

    def break_body(self, endpoint: str, times: int = 1, *, chunked: bool = True, after: int = 0) -> None:
        """Close the connection half-way through the next ``times`` answers of ``endpoint``: chunked
        (the last chunk never comes) or with a ``Content-Length`` the body falls short of. The first
        ``after`` requests (e.g. a ``COUNT()`` before the query) are answered whole."""
        queue = self.faults.setdefault(endpoint, deque())
        for _ in range(after):
            queue.append(Fault(200, None, passes=True))
        for _ in range(times):
            queue.append(Fault(200, None, broken_body=True, chunked=chunked))

    def stall(self, endpoint: str, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` answers of ``endpoint`` for ``seconds`` before answering normally."""
        queue = self.faults.setdefault(endpoint, deque())
        for _ in range(times):
            queue.append(Fault(200, None, stall_seconds=seconds))

    def issue_token(self) -> str:
        self.issued += 1
        token = f"00D000000000001!issued-{self.issued}"
        self.tokens.add(token)
        return token

    def expire_sessions(self) -> None:
        """Every access token issued so far stops working (a session timeout or a revoke)."""
        self.tokens.clear()

    def records_of(self, sobject: str) -> list[dict[str, Any]]:
        """The org's records of ``sobject`` (Task: ``records``)."""
        if sobject.lower() == "task":
            return self.records
        name = self.object_name(sobject)
        return self.objects.setdefault(name, [])

    def object_name(self, sobject: str) -> str:
        if sobject.lower() == "task":
            return "Task"
        for name in SCHEMA:
            if name.lower() == sobject.lower():
                return name
        raise _ApiError(400, [{"message": f"sObject type '{sobject}' is not supported.", "errorCode": "INVALID_TYPE"}])

    def fields_of(self, sobject: str) -> list[str] | None:
        """The object's fields in the fake org's schema; None for Task (whatever its records hold)."""
        name = self.object_name(sobject)
        if name == "Task":
            return None
        extra = ["CurrencyIsoCode"] if self.multi_currency and name in MULTI_CURRENCY_OBJECTS else []
        return [*SCHEMA[name], *extra]

    def canonical(self, name: str, sobject: str = "Task") -> str:
        """The field's API name in its canonical case (Salesforce ignores case in SOQL)."""
        known = {k.lower(): k for r in self.records_of(sobject) for k in r}
        known.update({k.lower(): k for k in self.fields_of(sobject) or ()})
        return known.get(name.lower(), name)

    def run_soql(self, soql: str, include_deleted: bool) -> list[dict[str, Any]]:
        self.soql_seen.append(soql)
        m = _SOQL.match(soql)
        if not m:
            raise _ApiError(400, [{"message": f"unexpected token: {soql[:40]}", "errorCode": "MALFORMED_QUERY"}])
        if "OFFSET" in soql.upper():
            raise AssertionError("calltrail must follow nextRecordsUrl, never OFFSET")
        sobject = self.object_name(m["object"])
        fields = [self.canonical(f.strip(), sobject) for f in m["fields"].split(",")]
        schema = self.fields_of(sobject)
        readable = {f.lower() for f in schema} if schema is not None else (
            None if self.readable_fields is None else {f.lower() for f in self.readable_fields})
        for f in fields:
            if readable is not None and f.lower() not in readable:
                raise _ApiError(400, [{
                    "message": f"\n{soql[:60]}\n^\nERROR at Row:1:Column:8\nNo such column '{f}' on entity "
                               f"'{sobject}'. If you are attempting to use a custom field, be sure to append the "
                               "'__c' after the custom field name.",
                    "errorCode": "INVALID_FIELD"}])
        rows = [r for r in self.records_of(sobject) if include_deleted or not r.get("IsDeleted")]
        for cond in re.split(r"\s+AND\s+", m["where"] or "", flags=re.IGNORECASE):
            if not cond.strip():
                continue
            c = _CONDITION.match(cond.strip())
            if not c:
                raise _ApiError(400, [{"message": f"fake cannot evaluate {cond!r}", "errorCode": "MALFORMED_QUERY"}])
            name, op, literal = c.groups()
            name = self.canonical(name, sobject)
            bound = _parse_time(literal)
            compare = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "=": operator.eq}[op]
            rows = [r for r in rows if r.get(name) and compare(_parse_time(r[name]), bound)]
        if m["order"]:
            order = self.canonical(m["order"], sobject)
            rows.sort(key=lambda r: r.get(order) or "")
        return [{"attributes": {"type": sobject, "url": f"/services/data/v59.0/sobjects/{sobject}/{r['Id']}"},
                 **{f: r.get(f) for f in fields}} for r in rows]

    # --- COUNT(), hard deletes, and faults and holds on the n-th page of a REST query ---
    # Pages are numbered from 1 (the query's own answer); page n > 1 is the nextRecordsUrl whose
    # offset is (n - 1) * page_size, as in Salesforce's ``.../query/01g...-2000``.

    def fail_page(self, page: int, status: int, error_code: str, message: str, times: int = 1) -> None:
        """Answer the next ``times`` requests for page ``page`` of a query with this Salesforce error."""
        queue = self.page_faults.setdefault(page, deque())
        for _ in range(times):
            queue.append(Fault(status, [{"message": message, "errorCode": error_code}]))

    def expire_session_at_page(self, page: int, new_token: str) -> None:
        """When page ``page`` is requested, every session ends (the request gets ``401
        INVALID_SESSION_ID``); only a client that logs in again (and gets ``new_token``) goes on."""
        self.session_revocations[page] = new_token

    def hold_page(self, page: int) -> tuple[threading.Event, threading.Event]:
        """Page ``page`` is answered only once ``release`` is set; ``reached`` is set when it is asked for."""
        reached, release = threading.Event(), threading.Event()
        self.page_holds[page] = (reached, release)
        return reached, release

    def hard_delete(self, record_id: str, sobject: str = "Task") -> None:
        """Delete a record beyond the Recycle Bin: ``queryAll`` no longer returns it at all."""
        records = self.records_of(sobject)
        before = len(records)
        records[:] = [r for r in records if r["Id"] != record_id]
        assert len(records) == before - 1, f"no {sobject} {record_id} in the fake org"
        self.deleted_for_good.append(record_id)

    def count_soql(self, soql: str, include_deleted: bool) -> dict[str, Any]:
        """``SELECT COUNT() FROM Task [WHERE ...]``: Salesforce answers totalSize and no records."""
        rows = self.run_soql(re.sub(r"COUNT\(\)", "Id", soql, count=1, flags=re.IGNORECASE), include_deleted)
        self.soql_seen[-1] = soql
        return {"totalSize": len(rows), "done": True, "records": []}

    def before_page(self, path: str) -> None:
        """Called for every request before authorisation: per-page session ends, faults and holds."""
        m = re.search(r"/(?:query|queryAll)/[^/]+-(\d+)$", path)
        if not m:
            return
        page = int(m[1]) // self.page_size + 1
        if page in self.session_revocations:
            self.tokens = {self.session_revocations.pop(page)}
        if page in self.page_holds:
            reached, release = self.page_holds.pop(page)
            reached.set()
            release.wait(timeout=60)
        queue = self.page_faults.get(page)
        if queue:
            fault = queue.popleft()
            raise _ApiError(fault.status, fault.body)


class _ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _handler(state: FakeSalesforce) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: Any, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            if self._break_next:
                self._break_next = False
                return self._send_broken(data, content_type, headers)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        _break_next = False
        _break_chunked = True
        _after_work: Fault | None = None

        def _send_broken(self, data: bytes, content_type: str, headers: dict[str, str] | None) -> None:
            """A 200 whose chunked body stops half-way: the connection closes before the last chunk."""
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if self._break_chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            half = data[: max(1, len(data) // 2)]
            self.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n" if self._break_chunked else half)
            self.wfile.flush()
            self.close_connection = True

        def _fault(self, endpoint: str) -> None:
            queue = state.faults.get(endpoint)
            if queue:
                fault = queue.popleft()
                if fault.passes:
                    return
                if fault.stall_seconds:
                    time.sleep(fault.stall_seconds)
                elif fault.broken_body:
                    self._break_next = True
                    self._break_chunked = fault.chunked
                elif fault.after_work:
                    self._after_work = fault
                else:
                    raise _ApiError(fault.status, fault.body, fault.headers)

        def _done(self) -> None:
            """Raise the fault that waited for the work to be done (a 500 after the job was created)."""
            if self._after_work is not None:
                fault, self._after_work = self._after_work, None
                raise _ApiError(fault.status, fault.body, fault.headers)

        def _authorised(self) -> None:
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").removeprefix("OAuth ").strip()
            if token not in state.tokens:
                raise _ApiError(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
            state.daily_api_remaining -= 1
            if state.sessions_expire_after is not None:
                state.sessions_expire_after -= 1
                if state.sessions_expire_after <= 0:
                    state.sessions_expire_after = None
                    state.expire_sessions()

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PATCH(self) -> None:
            self._dispatch("PATCH")

        def do_DELETE(self) -> None:
            self._dispatch("DELETE")

        def _dispatch(self, method: str) -> None:
            url = urlparse(self.path)
            state.requests.append((method, self.path))
            self._break_next, self._after_work = False, None
            try:
                if method == "POST" and re.match(r"^/services/Soap/u/[\d.]+/?$", url.path):
                    return self._soap_login()
                if method == "POST" and url.path == "/services/oauth2/token":
                    return self._token_login()
                state.before_page(url.path)
                self._authorised()
                self._route(method, url.path, parse_qs(url.query))
            except _ApiError as err:
                self._send(err.status, err.body, headers=err.headers)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def _soap_login(self) -> None:
            body = self._body().decode()
            user = re.search(r"<(?:urn|n1):username>(.*?)</(?:urn|n1):username>", body)
            password = re.search(r"<(?:urn|n1):password>(.*?)</(?:urn|n1):password>", body)
            if not user or not password or state.users.get(user[1]) != password[1]:
                fault = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv="
                         "\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:sf=\"urn:fault.partner.soap.sforce.com\">"
                         "<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_LOGIN</faultcode><detail>"
                         "<sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>"
                         "Invalid username, password, security token; or user locked out.</sf:exceptionMessage>"
                         "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>")
                return self._send(500, fault, "text/xml")
            state.logins.append(f"password:{user[1]}")
            ok = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv="
                  "\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns=\"urn:partner.soap.sforce.com\"><soapenv:Body>"
                  "<loginResponse><result><metadataServerUrl>https://" + state.instance_host +
                  "/services/Soap/m/59.0/00D000000000001</metadataServerUrl><passwordExpired>false</passwordExpired>"
                  "<sandbox>false</sandbox><serverUrl>https://" + state.instance_host +
                  "/services/Soap/u/59.0/00D000000000001</serverUrl><sessionId>" + state.issue_token() +
                  "</sessionId><userId>005000000000001</userId></result></loginResponse></soapenv:Body>"
                  "</soapenv:Envelope>")
            return self._send(200, ok, "text/xml")

        def _token_login(self) -> None:
            """``POST /services/oauth2/token``: a form body, a JSON answer, OAuth errors as 400."""
            form = parse_qs(self._body().decode())
            grant = (form.get("grant_type") or [""])[0]
            if grant == "client_credentials":
                return self._client_credentials_login()
            if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                return self._jwt_login(form)
            return self._send(400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"})

        def _client_credentials_login(self) -> None:
            import base64

            host = (self.headers.get("Host") or "").split(":")[0]
            if host in ("login.salesforce.com", "test.salesforce.com"):
                return self._send(400, {"error": "invalid_grant",
                                        "error_description": "request not supported on this domain"})
            auth = self.headers.get("Authorization", "")
            try:
                key, secret = base64.b64decode(auth.removeprefix("Basic ")).decode().split(":", 1)
            except ValueError:
                key, secret = "", ""
            if not key or state.clients.get(key) != secret:
                return self._send(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
            state.logins.append(f"client_credentials:{key}")
            return self._send(200, {"access_token": state.issue_token(), "signature": "fake", "scope": "api",
                                    "instance_url": f"https://{state.instance_host}", "token_type": "Bearer",
                                    "id": "https://login.salesforce.com/id/00D000000000001/005000000000001",
                                    "issued_at": "1767225600000"})

        def _jwt_login(self, form: dict[str, list[str]]) -> None:
            import jwt

            try:
                assert form.get("grant_type") == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                claims = jwt.decode(form["assertion"][0], state.jwt_public_key, algorithms=["RS256"],
                                    audience="https://login.salesforce.com")
            except Exception as exc:  # any bad assertion is an invalid grant, as in Salesforce
                return self._send(400, {"error": "invalid_grant", "error_description": f"invalid assertion: {exc}"})
            state.logins.append(f"jwt:{claims['sub']}:{claims['iss']}")
            return self._send(200, {"access_token": state.issue_token(), "scope": "api",
                                    "instance_url": f"https://{state.instance_host}", "token_type": "Bearer",
                                    "id": "https://login.salesforce.com/id/00D000000000001/005000000000001"})

        def _job_state(self, job: dict[str, Any]) -> str:
            if job["state"]:
                return job["state"]
            return "JobComplete" if job["polls"] > state.polls_before_complete else "InProgress"

        def _page(self, rows: list[dict[str, Any]], version: str, endpoint: str, offset: int = 0) -> dict[str, Any]:
            head, rest = rows[: state.page_size], rows[state.page_size:]
            body: dict[str, Any] = {"totalSize": len(rows), "done": not rest, "records": head}
            if rest:
                cursor = f"01gFAKE{uuid.uuid4().hex[:8]}-{offset + state.page_size}"
                state.cursors[cursor] = rest
                body["nextRecordsUrl"] = f"/services/data/{version}/{endpoint}/{cursor}"
            return body

        def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
            if method == "GET" and re.match(r"^/services/data/v[\d.]+/limits/?$", path):
                self._fault("limits")
                return self._send(200, {
                    "DailyApiRequests": {"Max": state.daily_api_max, "Remaining": state.daily_api_remaining},
                    "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(state.bulk_jobs)},
                    "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200}})
            m = re.match(r"^/services/data/v[\d.]+/sobjects/(?P<object>\w+)/describe/?$", path)
            if m and method == "GET":
                self._fault("describe")
                sobject = state.object_name(m["object"])
                names = state.fields_of(sobject) or sorted({k for r in state.records for k in r})
                return self._send(200, {"name": sobject, "queryable": True,
                                        "fields": [{"name": n, "type": "string"} for n in names]})
            m = re.match(r"^/services/data/(v[\d.]+)/(query|queryAll)/?(?P<cursor>[^/]+)?$", path)
            if m and method == "GET":
                version, endpoint = m.group(1), m.group(2)
                if m["cursor"]:
                    self._fault("more")
                    # a cursor stays readable while it lives, so a client may ask for a page again
                    rows = state.cursors.get(m["cursor"])
                    if rows is None:
                        raise _ApiError(400, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}])
                    total = len(rows)
                    body = self._page(rows, version, endpoint, int(m["cursor"].rsplit("-", 1)[1]))
                    body["totalSize"] = total
                    return self._send(200, body)
                self._fault(endpoint)
                if re.match(r"^\s*SELECT\s+COUNT\(\)\s", query["q"][0], re.IGNORECASE):
                    return self._send(200, state.count_soql(query["q"][0], include_deleted=endpoint == "queryAll"))
                rows = state.run_soql(query["q"][0], include_deleted=endpoint == "queryAll")
                return self._send(200, self._page(rows, version, endpoint))
            m = re.match(r"^/services/data/(v[\d.]+)/jobs/query/?(?P<job>[^/]+)?(?P<results>/results)?$", path)
            if m and method == "GET" and not m["job"]:
                self._fault("bulk_list")
                return self._send(200, {"done": True, "nextRecordsUrl": None, "records": [
                    {"id": job_id, "operation": job["operation"], "object": job["object"],
                     "createdById": "005000000000001", "state": self._job_state(job), "jobType": "V2Query",
                     "contentType": "CSV", "apiVersion": 59.0, "concurrencyMode": "Parallel"}
                    for job_id, job in state.bulk_jobs.items()]})
            if m and method == "POST" and not m["job"]:
                self._fault("bulk_create")
                payload = json.loads(self._body() or b"{}")
                soql = payload["query"]
                rows = state.run_soql(soql, include_deleted=payload["operation"] == "queryAll")
                job_id = "750FAKE" + uuid.uuid4().hex[:11]
                obj = _SOQL.match(soql)["object"]
                state.bulk_jobs[job_id] = {"rows": rows, "polls": 0, "operation": payload["operation"],
                                           "object": obj, "query": soql, "state": None}
                self._done()
                return self._send(200, {"id": job_id, "operation": payload["operation"], "object": obj,
                                        "state": "UploadComplete", "contentType": "CSV"})
            if m and m["job"] and m["job"] not in state.bulk_jobs:
                raise _ApiError(404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
            if m and method == "PATCH" and m["job"] and not m["results"]:
                job = state.bulk_jobs[m["job"]]
                wanted = json.loads(self._body() or b"{}").get("state")
                if wanted != "Aborted" or self._job_state(job) not in ("UploadComplete", "InProgress"):
                    raise _ApiError(400, [{"errorCode": "INVALIDJOBSTATE",
                                           "message": f"Invalid job state: {self._job_state(job)}"}])
                job["state"] = "Aborted"
                return self._send(200, {"id": m["job"], "state": "Aborted", "operation": job["operation"],
                                        "object": job["object"]})
            if m and method == "DELETE" and m["job"] and not m["results"]:
                job = state.bulk_jobs[m["job"]]
                if self._job_state(job) in ("InProgress",):
                    raise _ApiError(400, [{"errorCode": "INVALIDJOBSTATE",
                                           "message": "Abort the job before deleting it"}])
                del state.bulk_jobs[m["job"]]
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if m and method == "GET" and m["job"] and not m["results"]:
                self._fault("bulk_status")
                job = state.bulk_jobs[m["job"]]
                job["polls"] += 1
                return self._send(200, {"id": m["job"], "operation": job["operation"], "object": job["object"],
                                        "state": self._job_state(job)})
            if m and method == "GET" and m["results"]:
                self._fault("bulk_results")
                job = state.bulk_jobs[m["job"]]
                size = int(query.get("maxRecords", ["50000"])[0])
                start = int(query.get("locator", ["0"])[0] or 0)
                chunk = job["rows"][start:start + size]
                fields = [k for k in (job["rows"][0] if job["rows"] else {}) if k != "attributes"]
                out = io.StringIO()
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(fields)
                for row in chunk:
                    writer.writerow(["" if row.get(f) is None else str(row[f]).lower()
                                     if isinstance(row.get(f), bool) else row.get(f) for f in fields])
                nxt = start + size
                locator = str(nxt) if nxt < len(job["rows"]) else "null"
                return self._send(200, out.getvalue(), "text/csv",
                                  {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(chunk))})
            raise _ApiError(404, [{"message": f"The requested resource does not exist: {path}",
                                   "errorCode": "NOT_FOUND"}])

    return Handler


class FakeSalesforceServer:
    """Runs :class:`FakeSalesforce` on 127.0.0.1 over TLS; ``ca_path`` is the CA bundle to trust."""

    def __init__(self, state: FakeSalesforce, workdir: Path) -> None:
        self.state = state
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost", "login.salesforce.com", "test.salesforce.com",
                             state.instance_host)
        self.ca_path = workdir / "fake-salesforce-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        state.served_at = self.instance_url

    @property
    def instance_url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels every host to the fake Salesforce.

    simple-salesforce logs in at ``https://login.salesforce.com``; with the connection's
    ``proxies`` extra pointing here, the real login flows (SOAP username-password and JWT bearer)
    reach the fake, over TLS with its certificate, without touching the network.
    """

    def __init__(self, target: FakeSalesforceServer) -> None:
        self.target = target
        self.hosts: list[str] = []
        proxy = self

        class Tunnel(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                line = head.split(b"\r\n", 1)[0].decode()
                verb, authority, _ = line.split(" ", 2)
                if verb != "CONNECT":
                    self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                    return
                proxy.hosts.append(authority)
                upstream = socket.create_connection(target.httpd.server_address)
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                sockets = [self.request, upstream]
                try:
                    while True:
                        readable, _, _ = select.select(sockets, [], [], 10)
                        if not readable:
                            return
                        for s in readable:
                            data = s.recv(65536)
                            if not data:
                                return
                            (upstream if s is self.request else self.request).sendall(data)
                finally:
                    upstream.close()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ConnectProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
