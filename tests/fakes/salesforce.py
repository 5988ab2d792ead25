"""A local fake of the Salesforce REST and Bulk API 2.0, over HTTPS with a self-signed certificate.

It speaks the wire format simple-salesforce expects: ``query``/``queryAll`` pages with
``nextRecordsUrl``, Bulk 2.0 query jobs with CSV result pages, ``Sforce-Locator`` and
``Sforce-NumberOfRecords`` headers, and Salesforce's JSON error bodies
(``[{"message": ..., "errorCode": ...}]``). Faults are scripted per endpoint.
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


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))


@dataclass
class Fault:
    status: int
    body: Any


@dataclass
class FakeSalesforce:
    """State of the fake org. ``records`` are Task records as the REST API returns them."""

    records: list[dict[str, Any]] = field(default_factory=list)
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

    def fail(self, endpoint: str, status: int, error_code: str, message: str, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``endpoint`` (query, queryAll, more, bulk_create,
        bulk_status, bulk_results) with this Salesforce error."""
        queue = self.faults.setdefault(endpoint, deque())
        for _ in range(times):
            queue.append(Fault(status, [{"message": message, "errorCode": error_code}]))

    def run_soql(self, soql: str, include_deleted: bool) -> list[dict[str, Any]]:
        self.soql_seen.append(soql)
        m = _SOQL.match(soql)
        if not m:
            raise _ApiError(400, [{"message": f"unexpected token: {soql[:40]}", "errorCode": "MALFORMED_QUERY"}])
        if "OFFSET" in soql.upper():
            raise AssertionError("calltrail must follow nextRecordsUrl, never OFFSET")
        fields = [f.strip() for f in m["fields"].split(",")]
        for f in fields:
            if self.readable_fields is not None and f not in self.readable_fields:
                raise _ApiError(400, [{
                    "message": f"\n{soql[:60]}\n^\nERROR at Row:1:Column:8\nNo such column '{f}' on entity "
                               "'Task'. If you are attempting to use a custom field, be sure to append the "
                               "'__c' after the custom field name.",
                    "errorCode": "INVALID_FIELD"}])
        rows = [r for r in self.records if include_deleted or not r.get("IsDeleted")]
        for cond in re.split(r"\s+AND\s+", m["where"] or "", flags=re.IGNORECASE):
            if not cond.strip():
                continue
            c = _CONDITION.match(cond.strip())
            if not c:
                raise _ApiError(400, [{"message": f"fake cannot evaluate {cond!r}", "errorCode": "MALFORMED_QUERY"}])
            name, op, literal = c.groups()
            bound = _parse_time(literal)
            compare = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "=": operator.eq}[op]
            rows = [r for r in rows if r.get(name) and compare(_parse_time(r[name]), bound)]
        if m["order"]:
            rows.sort(key=lambda r: r.get(m["order"]) or "")
        return [{"attributes": {"type": "Task", "url": f"/services/data/v59.0/sobjects/Task/{r['Id']}"},
                 **{f: r.get(f) for f in fields}} for r in rows]

    # --- Watermark and reconciliation: COUNT(), faults and holds on the n-th page of a REST query ---
    # Pages are numbered from 1 (the query's own answer); page n > 1 is the nextRecordsUrl whose
    # offset is (n - 1) * page_size, as in Salesforce's ``.../query/01g...-2000``.
    page_faults: dict[int, deque[Fault]] = field(default_factory=dict)
    session_revocations: dict[int, str] = field(default_factory=dict)  # page -> the only token valid from then
    page_holds: dict[int, tuple[threading.Event, threading.Event]] = field(default_factory=dict)
    deleted_for_good: list[str] = field(default_factory=list)

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

    def hard_delete(self, task_id: str) -> None:
        """Delete a Task beyond the Recycle Bin: ``queryAll`` no longer returns it at all."""
        before = len(self.records)
        self.records = [r for r in self.records if r["Id"] != task_id]
        assert len(self.records) == before - 1, f"no Task {task_id} in the fake org"
        self.deleted_for_good.append(task_id)

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
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _handler(state: FakeSalesforce) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: Any, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _fault(self, endpoint: str) -> None:
            queue = state.faults.get(endpoint)
            if queue:
                fault = queue.popleft()
                raise _ApiError(fault.status, fault.body)

        def _authorised(self) -> None:
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ").removeprefix("OAuth ").strip()
            if token not in state.tokens:
                raise _ApiError(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            url = urlparse(self.path)
            state.requests.append((method, self.path))
            try:
                if method == "POST" and re.match(r"^/services/Soap/u/[\d.]+/?$", url.path):
                    return self._soap_login()
                if method == "POST" and url.path == "/services/oauth2/token":
                    return self._jwt_login()
                state.before_page(url.path)
                self._authorised()
                self._route(method, url.path, parse_qs(url.query))
            except _ApiError as err:
                self._send(err.status, err.body)

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
                  "/services/Soap/u/59.0/00D000000000001</serverUrl><sessionId>" + sorted(state.tokens)[0] +
                  "</sessionId><userId>005000000000001</userId></result></loginResponse></soapenv:Body>"
                  "</soapenv:Envelope>")
            return self._send(200, ok, "text/xml")

        def _jwt_login(self) -> None:
            import jwt

            form = parse_qs(self._body().decode())
            try:
                assert form.get("grant_type") == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                claims = jwt.decode(form["assertion"][0], state.jwt_public_key, algorithms=["RS256"],
                                    audience="https://login.salesforce.com")
            except Exception as exc:  # any bad assertion is an invalid grant, as in Salesforce
                return self._send(400, {"error": "invalid_grant", "error_description": f"invalid assertion: {exc}"})
            state.logins.append(f"jwt:{claims['sub']}:{claims['iss']}")
            return self._send(200, {"access_token": sorted(state.tokens)[0], "scope": "api",
                                    "instance_url": f"https://{state.instance_host}", "token_type": "Bearer",
                                    "id": "https://login.salesforce.com/id/00D000000000001/005000000000001"})

        def _page(self, rows: list[dict[str, Any]], version: str, endpoint: str, offset: int = 0) -> dict[str, Any]:
            head, rest = rows[: state.page_size], rows[state.page_size:]
            body: dict[str, Any] = {"totalSize": len(rows), "done": not rest, "records": head}
            if rest:
                cursor = f"01gFAKE{uuid.uuid4().hex[:8]}-{offset + state.page_size}"
                state.cursors[cursor] = rest
                body["nextRecordsUrl"] = f"/services/data/{version}/{endpoint}/{cursor}"
            return body

        def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
            m = re.match(r"^/services/data/(v[\d.]+)/(query|queryAll)/?(?P<cursor>[^/]+)?$", path)
            if m and method == "GET":
                version, endpoint = m.group(1), m.group(2)
                if m["cursor"]:
                    self._fault("more")
                    rows = state.cursors.pop(m["cursor"], None)
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
            if m and method == "POST" and not m["job"]:
                self._fault("bulk_create")
                payload = json.loads(self._body() or b"{}")
                rows = state.run_soql(payload["query"], include_deleted=payload["operation"] == "queryAll")
                job_id = "750FAKE" + uuid.uuid4().hex[:11]
                state.bulk_jobs[job_id] = {"rows": rows, "polls": 0, "operation": payload["operation"]}
                return self._send(200, {"id": job_id, "operation": payload["operation"], "object": "Task",
                                        "state": "UploadComplete", "contentType": "CSV"})
            if m and method == "GET" and m["job"] and not m["results"]:
                self._fault("bulk_status")
                job = state.bulk_jobs[m["job"]]
                job["polls"] += 1
                done = job["polls"] > state.polls_before_complete
                return self._send(200, {"id": m["job"], "operation": job["operation"],
                                        "state": "JobComplete" if done else "InProgress"})
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
