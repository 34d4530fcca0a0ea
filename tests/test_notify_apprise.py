"""SMS and chat through Apprise against a real HTTP server in a thread (Apprise's json:// and
form:// services): what arrives, and which failures are retried and which are final."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from ingest_service.notify.apprise_channel import (
    SMS_MAX_CHARS,
    AppriseSendError,
    ChatChannel,
    SmsChannel,
    mask_phone,
    normalize_phone,
)
from ingest_service.notify.channels import Outgoing, PermanentFailure, Target
from notifications import render, template_context
from notifications.templates import sample_payload

NOW = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)


@dataclass
class Receiver:
    """A webhook-style endpoint: records each POST, answers with `status`."""

    port: int = 0
    status: int = 200
    delay_s: float = 0.0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append((self.path, dict(self.headers), body))
            if state.delay_s:
                threading.Event().wait(state.delay_s)
            reply = b'{"error": "provider down"}' if state.status >= 400 else b"{}"
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def send(channel: ChatChannel | SmsChannel, target: Target, out: Outgoing) -> None:
    asyncio.run(channel.send(target, out, now=NOW))


def outgoing(event: str = "dispatched", locale: str = "en", **payload: str) -> Outgoing:
    data = {**sample_payload(event), **payload}
    url = "https://track.example/t/AbCdEfGhIjKlMnOpQrStUvWxYz012345"
    message = render(event, locale, template_context(data, locale, UTC, url))
    return Outgoing(
        notification_id=7,
        event=event,
        locale=locale,
        payload=data,
        message=message,
        tracking_url=url,
    )


def test_a_chat_message_arrives_with_its_subject_and_text(receiver: Receiver) -> None:
    out = outgoing("eta_moved", "zh-CN")
    url = f"json://127.0.0.1:{receiver.port}/hooks/chat"
    send(ChatChannel(), Target(address=url), out)
    [(path, _, body)] = receiver.requests
    sent = json.loads(body)
    assert path == "/hooks/chat"
    assert sent["title"] == out.message.subject
    assert sent["message"] == out.message.text.strip()  # Apprise trims the last newline
    assert "11月22日" in sent["message"] and out.tracking_url in sent["message"]


def test_an_sms_goes_to_the_customers_number_in_short_form(receiver: Receiver) -> None:
    channel = SmsChannel(f"form://127.0.0.1:{receiver.port}/sms?:to={{phone}}")
    out = outgoing("arriving")
    send(channel, Target(address="+49 (151) 123-456 78"), out)
    [(path, _, body)] = receiver.requests
    form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    assert path == "/sms"
    assert form["to"] == "+4915112345678"  # the "+" survived the query string
    assert form["message"] == f"{out.message.subject} {out.tracking_url}"
    assert "Hello" not in form["message"]  # the short form, not the e-mail text


def test_a_long_subject_is_cut_and_the_link_kept_whole(receiver: Receiver) -> None:
    channel = SmsChannel(f"json://127.0.0.1:{receiver.port}/sms/{{phone}}")
    out = outgoing("confirmed", order_number="SO-" + "9" * 400)
    send(channel, Target(address="+15551234567"), out)
    [(path, _, body)] = receiver.requests
    text = json.loads(body)["message"]
    assert path == "/sms/+15551234567"
    assert len(text) <= SMS_MAX_CHARS
    assert text.endswith(f"… {out.tracking_url}")


def test_a_server_error_is_retryable_and_names_the_reason_without_secrets(
    receiver: Receiver,
) -> None:
    receiver.status = 500
    url = f"json://bot:s3cret-token@127.0.0.1:{receiver.port}/chat"
    with pytest.raises(AppriseSendError) as failed:
        send(ChatChannel(), Target(address=url), outgoing())
    assert not isinstance(failed.value, PermanentFailure)
    assert "500" in str(failed.value)
    assert "s3cret-token" not in str(failed.value)
    assert len(receiver.requests) == 1  # one attempt; the sender owns the retries

    sms = SmsChannel(f"json://127.0.0.1:{receiver.port}/sms?:to={{phone}}")
    with pytest.raises(AppriseSendError) as sms_failed:
        send(sms, Target(address="+15551234567"), outgoing())
    assert "15551234567" not in str(sms_failed.value)


def test_an_unreachable_service_is_retryable() -> None:
    with pytest.raises(AppriseSendError):
        send(ChatChannel(), Target(address="json://127.0.0.1:1/x"), outgoing())


def test_a_service_that_hangs_gives_up_after_the_timeout(receiver: Receiver) -> None:
    receiver.delay_s = 3
    channel = ChatChannel(timeout_s=0.5)
    url = f"json://127.0.0.1:{receiver.port}/slow"
    started = datetime.now(UTC)
    with pytest.raises(AppriseSendError):
        send(channel, Target(address=url), outgoing())
    assert (datetime.now(UTC) - started).total_seconds() < 2.5


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("nosuchservice://token@example.com", "no service called nosuchservice://"),
        ("tgram://", "tgram:// URL is malformed"),
        ("json://", "json:// URL is malformed"),
        ("", "has no chat URL"),
    ],
)
def test_a_chat_url_apprise_cannot_use_is_a_permanent_failure(url: str, why: str) -> None:
    with pytest.raises(PermanentFailure) as failed:
        send(ChatChannel(), Target(address=url), outgoing())
    assert why in str(failed.value)
    assert "chat_url" in str(failed.value)  # says what to fix


def test_a_bad_sms_provider_url_or_phone_is_a_permanent_failure() -> None:
    channel = SmsChannel("nosuchsms://KEY@provider/{phone}")
    with pytest.raises(PermanentFailure) as failed:
        send(channel, Target(address="+15551234567"), outgoing())
    assert "TRACKLANE_SMS_URL" in str(failed.value) and "KEY" not in str(failed.value)
    with pytest.raises(PermanentFailure, match=r"\+\*\*\*\*4567"):
        send(channel, Target(address="+1 555 CALL 4567"), outgoing())


def test_an_sms_url_without_a_place_for_the_number_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match=r"\{phone\}"):
        SmsChannel("twilio://SID:TOKEN@+15550001111/+15551234567")
    assert "TOKEN" not in repr(SmsChannel("twilio://SID:TOKEN@+15550001111/{phone}"))


def test_phone_numbers_are_normalised_and_masked() -> None:
    assert normalize_phone(" +1 (555) 123-4567 ") == "+15551234567"
    assert normalize_phone("0151.123.45678") == "015112345678"
    assert mask_phone("+15551234567") == "+*******4567"
    with pytest.raises(PermanentFailure):
        normalize_phone("call me")
