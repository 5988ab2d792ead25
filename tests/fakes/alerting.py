"""Local stand-ins for the alert channels, speaking the real wire formats on loopback.

- :class:`SlackWebhookServer`: an HTTP server that accepts Slack Incoming Webhook posts (a JSON
  body with ``text``) and answers ``ok`` as Slack does, or a scripted error status.
- :class:`SmtpServer`: a real SMTP server (aiosmtpd) that keeps every message it receives.

Each also gives the Airflow connection (as ``AIRFLOW_CONN_*`` JSON) that points at it.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from aiosmtpd.controller import Controller

WEBHOOK_PATH = "/services/T000/B000/calltrail"


class SlackWebhookServer:
    def __init__(self, status: int = 200) -> None:
        self.posts: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.status = status
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.paths.append(self.path)
                server.posts.append(json.loads(body))
                reply = b"ok" if server.status == 200 else b"internal_error"
                self.send_response(server.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def connection(self) -> str:
        return json.dumps({"conn_type": "slackwebhook", "host": f"{self.url}/services",
                           "password": "T000/B000/calltrail"})

    @property
    def texts(self) -> list[str]:
        return [p.get("text", "") for p in self.posts]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def dead_webhook_connection() -> str:
    """A Slack webhook connection to a loopback port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return json.dumps({"conn_type": "slackwebhook", "host": f"http://127.0.0.1:{port}/services",
                       "password": "T000/B000/calltrail"})


class _Keeper:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.keeper = _Keeper()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.controller = Controller(self.keeper, hostname="127.0.0.1", port=port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.keeper.messages

    def bodies(self) -> list[str]:
        return [m.get_body(("html", "plain")).get_content() for m in self.messages]

    def connection(self) -> str:
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.controller.port,
                           "extra": {"from_email": "calltrail@example.com", "disable_ssl": True,
                                     "disable_tls": True, "timeout": 10, "retry_limit": 1}})

    def __enter__(self) -> Self:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
