"""Build paho clients from `mqtt://user:pass@host:port` or `mqtts://...` URLs."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    def redacted(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(
            f"MQTT URL {url!r}: scheme must be mqtt:// or mqtts://, e.g. mqtt://127.0.0.1:1883"
        )
    tls = parts.scheme in ("mqtts", "ssl")
    if not parts.hostname:
        raise ValueError(f"MQTT URL {url!r} names no host")
    return BrokerAddress(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def make_client(
    address: BrokerAddress,
    client_id: str,
    *,
    manual_ack: bool = False,
    receive_maximum: int | None = None,
    session_expiry_s: int = 0,
    ca_file: str | None = None,
) -> tuple[mqtt.Client, Properties]:
    """A v5 client and the CONNECT properties to pass to `connect`.

    With `session_expiry_s` > 0 the broker keeps the session (subscriptions and unacked
    QoS 1 messages) across disconnects, so pass `clean_start=False` when connecting.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        context = ssl.create_default_context(cafile=ca_file)
        client.tls_set_context(context)
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client, props
