"""A customer's webhook endpoint for the tests: a real HTTP(S) server in a thread that checks
our signatures with its own HMAC code (not ours: an independent reading of the documented
format), refuses stale timestamps (400), replays of an id it accepted (409) and bad signatures
(401), and records every connection and request."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

WINDOW_S = 300


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    why: str = ""

    def json(self) -> Any:
        return json.loads(self.body)


def check(secret: str, header: str, body: bytes, now: float) -> tuple[int, str]:
    """What a receiver following docs/notifications.md answers: (status, why)."""
    fields: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        (t,) = fields["t"]
        timestamp = int(t)
    except (KeyError, ValueError):
        return 400, "no timestamp"
    mac = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(mac, v) for v in fields.get("v1", []) if v.isascii()):
        return 401, "bad signature"
    if abs(now - timestamp) > WINDOW_S:
        return 400, "stale"
    return 200, "ok"


@dataclass
class Receiver:
    secret: str
    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None
    clock: Any = time.time  # the receiver's own clock; a test moves it to replay "later"
    scripted: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    accepted: list[Request] = field(default_factory=list)
    connections: int = 0
    seen_ids: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = Request(self.path, dict(self.headers.items()), body)
                status, extra, reply = receiver.answer(request)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                with receiver.lock:
                    receiver.connections += 1
                super().process_request(request, client_address)

        self.server = Server((self.host, 0), Handler)
        if self.tls is not None:
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def url(self, path: str = "/hook", scheme: str | None = None, host: str | None = None) -> str:
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme or ('https' if self.tls else 'http')}://{host}:{self.port}{path}"

    def answer(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.requests.append(request)
            if self.scripted:
                status, extra, reply = self.scripted.pop(0)
                request.status = status
                return status, extra, reply
            status, why = check(
                self.secret, request.headers.get("Tracklane-Signature", ""), request.body,
                self.clock(),
            )  # fmt: skip
            notification_id = request.headers.get("Tracklane-Notification-Id", "")
            if status == 200 and notification_id != request.json().get("id"):
                status, why = 400, "id header differs from the signed body's id"
            if status == 200 and notification_id in self.seen_ids:
                status, why = 409, "already accepted"
            if status == 200:
                self.seen_ids.add(notification_id)
                self.accepted.append(request)
            request.status, request.why = status, why
            return status, {"Content-Type": "text/plain"}, why.encode()

    def resend(self, headers: dict[str, str], body: bytes) -> int:
        """POST these exact headers and body again (a replay, or a tampered copy)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
        try:
            conn.request("POST", "/hook", body=body, headers=headers)
            return conn.getresponse().status
        finally:
            conn.close()

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def self_signed(folder: Path) -> dict[str, tuple[Path, Path]]:
    """(cert, key) files: "localhost" for localhost and 127.0.0.1, "other" for other.test."""
    made = {}
    for name, san in [("localhost", "DNS:localhost,IP:127.0.0.1"), ("other", "DNS:other.test")]:
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
             "-addext", f"subjectAltName={san}"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        made[name] = (cert, key)
    return made


def tls_receiver(secret: str, cert: Path, key: Path, sni: list[str | None]) -> Receiver:
    """An https receiver with this certificate; `sni` collects the names clients ask for."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: sni.append(name)  # type: ignore[assignment,misc]
    return Receiver(secret, tls=context)
