"""Reader and scanner profiles: a device model's settings, shared by gateways.

A gateway's source may name a `profile`; `resolve_profiles` merges that file
(`profiles/readers/<name>.toml` or `profiles/scanners/<name>.toml`) under the source's own
keys before the gateway config is validated (edge_agent/config.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from event_contract import Stage

from .config import (
    AntennaId,
    Baudrate,
    GatewayConfigError,
    RfidSmoothingConfig,
    Session,
    TagPopulation,
    TxPowerDbm,
    _explain,
    _read_toml,
    _Strict,
)


class ReaderProfile(_Strict):
    """An RFID reader model's settings, shared by gateways: `profiles/readers/<name>.toml`."""

    tx_power_dbm: TxPowerDbm | None = None
    # By antenna number; a gateway's antennas not listed here get tx_power_dbm.
    antenna_tx_power_dbm: dict[AntennaId, TxPowerDbm] = {}
    session: Session | None = None
    mode_identifier: int | None = Field(default=None, ge=0)
    tag_population: TagPopulation | None = None
    report_timeout_ms: int | None = Field(default=None, ge=0)
    configure_timeout_s: float | None = Field(default=None, gt=0)
    smoothing: RfidSmoothingConfig | None = None


class ScannerProfile(_Strict):
    """A barcode scanner's settings, shared by gateways: `profiles/scanners/<name>.toml`."""

    baudrate: Baudrate | None = None  # serial scanners only
    stage: Stage | None = None


# Source type -> (profiles subfolder, profile model).
_PROFILES: dict[str, tuple[str, type[ReaderProfile] | type[ScannerProfile]]] = {
    "rfid_llrp": ("readers", ReaderProfile),
    "scanner_serial": ("scanners", ScannerProfile),
    "scanner_tcp": ("scanners", ScannerProfile),
}
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def load_profile(path: str | Path) -> ReaderProfile | ScannerProfile:
    """Read and validate one profile file; its folder (readers/, scanners/) says its kind."""
    path = Path(path)
    models = {folder: model for folder, model in _PROFILES.values()}
    model = models.get(path.parent.name)
    if model is None:
        raise GatewayConfigError(f"{path}: a profile lives in profiles/readers/ or /scanners/")
    try:
        return model.model_validate(_read_toml(path, "profile"))
    except ValidationError as err:
        kind = path.parent.name.removesuffix("s")
        raise GatewayConfigError(f"{path}: invalid {kind} profile:\n  {_explain(err)}") from None


def _apply_profile(source: Mapping[str, Any], where: str, profiles_dir: Path | None) -> Any:
    kind, name = source.get("type"), source["profile"]
    if kind not in _PROFILES:
        raise GatewayConfigError(
            f"{where}: {kind} sources take no profile (profiles are for {', '.join(_PROFILES)})"
        )
    folder = _PROFILES[str(kind)][0]
    if not isinstance(name, str) or not _PROFILE_NAME.match(name):
        raise GatewayConfigError(f"{where}: {name!r} is not a profile name")
    if profiles_dir is None:
        raise GatewayConfigError(
            f"{where}: profile {name!r} needs a profiles folder (load the file, or pass one)"
        )
    path = profiles_dir / folder / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in (profiles_dir / folder).glob("*.toml"))
        raise GatewayConfigError(
            f"{where}: unknown {folder[:-1]} profile {name!r}: there is no {path} "
            f"(available: {', '.join(known) or 'none'})"
        )
    settings = load_profile(path).model_dump(exclude_unset=True)
    if kind == "scanner_tcp" and "baudrate" in settings:
        raise GatewayConfigError(f"{path}: sets baudrate, but {where} is a TCP scanner")
    powers = settings.pop("antenna_tx_power_dbm", {})
    merged = {**settings, **source}
    if isinstance(settings.get("smoothing"), dict) and isinstance(source.get("smoothing"), dict):
        merged["smoothing"] = {**settings["smoothing"], **source["smoothing"]}
    if powers and isinstance(source.get("antennas"), list):
        merged["antennas"] = [
            {"tx_power_dbm": powers[a.get("antenna")], **a}
            if isinstance(a, dict) and a.get("antenna") in powers
            else a
            for a in source["antennas"]
        ]
    return merged


def resolve_profiles(
    data: Mapping[str, Any], *, origin: str, profiles_dir: Path | None
) -> Mapping[str, Any]:
    """The config with each source's `profile` merged under the source's own keys."""
    sources = data.get("sources")
    if not isinstance(sources, list):
        return data
    resolved = [
        _apply_profile(s, f"{origin}: sources[{i}]", profiles_dir)
        if isinstance(s, dict) and "profile" in s
        else s
        for i, s in enumerate(sources)
    ]
    return {**data, "sources": resolved}
