"""paho-mqtt 2 set up the way Tracklane uses it: MQTT 5, URLs, TLS, persistent sessions.

Shared by the edge agent and the ingest service; imports nothing else of Tracklane's.
"""

from .client import BrokerAddress, make_client, parse_mqtt_url

__all__ = ["BrokerAddress", "make_client", "parse_mqtt_url"]
