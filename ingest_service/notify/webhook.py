"""Webhooks: a signed JSON POST to the customer's URL (docs/notifications.md).

The host is resolved once and every address checked (`netguard.resolve_public`); we then
connect to a checked address ourselves, with the original host in the Host header and, for
https, in SNI and the certificate check. A second lookup by the HTTP library could get
another answer (DNS rebinding), so there is none. Redirects are not followed: the target of a
redirect was never checked. urllib3 is blocking, so the request runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

from ingest_service.notify.channels import Outgoing, PermanentFailure, Target
from ingest_service.notify.netguard import UnsafeDestination, check_url, resolve_public
from notifications.signing import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    sign,
    webhook_body,
)

USER_AGENT = "Tracklane-Webhook/1"
MAX_ERROR_BODY = 300  # bytes of a refusal's body kept for last_error
_RETRYABLE_4XX = frozenset({408, 425, 429})


class WebhookError(Exception):
    """A failure worth retrying: a network error, a timeout, 408/425/429 or a 5xx."""

    def __init__(self, message: str, status: int | None = None, excerpt: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.excerpt = excerpt


@dataclass(frozen=True, slots=True)
class _Request:
    host: str  # as written in the URL: SNI, the certificate check, the Host header
    port: int
    https: bool
    path: str
    headers: dict[str, str]
    body: bytes


def _reason(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _excerpt(data: bytes) -> str:
    text = " ".join(data.decode("utf-8", "replace").split())
    return text[:200]


class WebhookChannel:
    """POSTs one signed notification to one customer URL. Raises PermanentFailure when
    retrying cannot help (refused destination, no secret, a 3xx or a 4xx other than
    408/425/429) and WebhookError for what may pass."""

    name = "webhook"

    def __init__(
        self,
        *,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s)
        self.ssl_context = ssl_context  # None: the system's CAs

    async def send(self, target: Target, out: Outgoing, *, now: datetime) -> None:
        check_url(target.address, target.allow_private)
        if not target.secret:
            raise PermanentFailure(
                "no webhook secret: make one with POST /api/v1/customers/{ref}/webhook-secret"
                " (the admin API) and give it to the customer, who checks our signatures with it"
            )
        parts = urlsplit(target.address)
        host = parts.hostname or ""
        if not host.isascii():  # an internationalised name: the Host header and SNI need IDNA
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as e:
                raise UnsafeDestination(f"webhook host {host!r} is not a valid name: {e}") from e
        https = parts.scheme.lower() == "https"
        port = parts.port or (443 if https else 80)
        addresses = await resolve_public(host, port, target.allow_private)

        body = webhook_body(out.notification_id, out.event, out.payload, out.tracking_url)
        netloc_host = f"[{host}]" if ":" in host else host
        default_port = port == (443 if https else 80)
        request = _Request(
            host=host,
            port=port,
            https=https,
            path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
            headers={
                "Host": netloc_host if default_port else f"{netloc_host}:{port}",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                SIGNATURE_HEADER: sign(target.secret, int(now.timestamp()), body),
                ID_HEADER: str(out.notification_id),
                EVENT_HEADER: out.event,
            },
            body=body,
        )
        await asyncio.to_thread(self._post, request, addresses)

    def _pool(self, request: _Request, address: str) -> urllib3.HTTPConnectionPool:
        common = {"port": request.port, "timeout": self.timeout, "retries": False, "maxsize": 1}
        if not request.https:
            return urllib3.HTTPConnectionPool(address, **common)
        # We connect to the checked address; SNI and the certificate check use the URL's host
        # (the context checks the name itself, so no assert_hostname, which would turn that off).
        context = self.ssl_context or ssl.create_default_context()
        return urllib3.HTTPSConnectionPool(
            address,
            **common,
            ssl_context=context,
            cert_reqs="CERT_REQUIRED",
            server_hostname=request.host,
        )

    def _post(self, request: _Request, addresses: list[str]) -> None:
        last: Exception | None = None
        for address in addresses:  # the next checked address only if this one never connected
            with self._pool(request, address) as pool:
                try:
                    response = pool.urlopen(
                        "POST",
                        request.path,
                        body=request.body,
                        headers=request.headers,
                        redirect=False,
                        retries=False,
                        assert_same_host=False,
                        preload_content=False,
                    )
                except (NewConnectionError, ConnectTimeoutError) as e:
                    last = e
                    continue
                except HTTPError as e:
                    raise WebhookError(f"webhook {request.host}: {e}") from e
                try:
                    self._judge(request.host, response)
                finally:
                    response.release_conn()
                return
        raise WebhookError(f"webhook {request.host}: could not connect ({last})") from last

    def _judge(self, host: str, response: urllib3.BaseHTTPResponse) -> None:
        status = response.status
        if 200 <= status < 300:
            return
        try:
            excerpt = _excerpt(response.read(MAX_ERROR_BODY))
        except (HTTPError, OSError):
            excerpt = ""
        said = f": {excerpt}" if excerpt else ""
        if 300 <= status < 400:
            location = response.headers.get("Location", "(no Location)")
            raise PermanentFailure(
                f"webhook {host} answered {_reason(status)} to {location[:200]}; redirects are"
                " not followed: save the final URL as the webhook"
            )
        if status in _RETRYABLE_4XX or status >= 500 or status < 200:
            raise WebhookError(f"webhook {host} answered {_reason(status)}{said}", status, excerpt)
        raise PermanentFailure(f"webhook {host} refused with {_reason(status)}{said}")


__all__ = ["UnsafeDestination", "WebhookChannel", "WebhookError"]
