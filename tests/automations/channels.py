"""Real receivers for the automation tests: an SMTP server (aiosmtpd) and an HTTP webhook receiver,
both on 127.0.0.1, both recording what arrived, both able to answer with scripted failures."""

from __future__ import annotations

import asyncio
import email
import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from tests.conftest import free_port


@dataclass
class SMTPSink:
    """Messages as they arrived; ``reject`` maps a recipient to the SMTP reply its RCPT gets; ``delay``
    seconds pass before each message is accepted (a slow provider)."""

    messages: list[Message] = field(default_factory=list)
    reject: dict[str, str] = field(default_factory=dict)
    port: int = 0
    delay: float = 0.0
    connections: int = 0  # EHLOs received: one per connection without STARTTLS

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]) -> Any:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.reject:
            return self.reject[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


class smtp_sink:
    def __init__(self, delay: float = 0.0, port: int | None = None) -> None:
        self.delay = delay
        self.port = port

    def __enter__(self) -> SMTPSink:
        self.sink = SMTPSink(port=self.port or free_port(), delay=self.delay)
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.sink.port)
        self.controller.start()
        return self.sink

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """Answers each path from its script (a list of ``(status, headers)``, then 200) and records requests."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = defaultdict(list)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                script = receiver.script[self.path]
                status, headers = script.pop(0) if script else (200, {})
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.at(path)]
