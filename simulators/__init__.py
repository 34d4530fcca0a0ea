"""Devices that speak the real protocols over real sockets, for tests and the demo.

async with GpsSimulator(GpsSimConfig(rate_hz=5)) as gps, ScannerSimulator() as scanner:
    ...  # point a gateway config at gps.port and scanner.port
"""

from .gps import GpsSimConfig, GpsSimulator
from .nmea_encode import SimFix, encode_epoch, encode_gga, encode_rmc
from .routes import DEMO_ROUTE, RouteWalker
from .scanner import ScannerSimConfig, ScannerSimulator, gs1_check_digit, make_sscc
from .tag_population import ScenarioConfig, TagScenario

__all__ = [
    "DEMO_ROUTE",
    "GpsSimConfig",
    "GpsSimulator",
    "RouteWalker",
    "ScannerSimConfig",
    "ScannerSimulator",
    "ScenarioConfig",
    "SimFix",
    "TagScenario",
    "encode_epoch",
    "encode_gga",
    "encode_rmc",
    "gs1_check_digit",
    "make_sscc",
]
