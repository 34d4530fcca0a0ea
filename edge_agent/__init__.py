"""The edge agent: reads a gateway's devices and publishes their events over MQTT.

config = load_gateway_config("firmware_configs/demo-dock-a.toml")
await EdgeAgent(config, parse_mqtt_url(config.mqtt_url)).run(stop)
"""

from .agent import EdgeAgent, build_source
from .config import GatewayConfig, GatewayConfigError, load_gateway_config, parse_gateway_config
from .publisher import Publisher, PublisherError

__all__ = [
    "EdgeAgent",
    "GatewayConfig",
    "GatewayConfigError",
    "Publisher",
    "PublisherError",
    "build_source",
    "load_gateway_config",
    "parse_gateway_config",
]
