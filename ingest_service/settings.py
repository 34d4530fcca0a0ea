"""Service configuration, from `TRACKLANE_*` environment variables (or a `.env` file).

Read once when a program starts (`Settings()`), then passed in; nothing reads it at import.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that must never reach production: the demo's and the docs' examples.
KNOWN_DEV_SECRETS = frozenset({"", "change-me", "changeme", "secret", "dev", "tracklane", "admin"})
MIN_SECRET_LENGTH = 32


class ConfigError(ValueError):
    """Configuration that cannot run; the message says what to set."""


class Settings(BaseSettings):
    # A `.env` file may hold other programs' variables too: those are ignored, but a
    # TRACKLANE_* name that is not a setting is an error (see `unknown_variables`).
    model_config = SettingsConfigDict(
        env_prefix="TRACKLANE_", env_file=".env", extra="ignore", env_file_encoding="utf-8"
    )

    mode: Literal["dev", "production"] = "dev"
    data_dir: Path = Path(".tracklane")
    database_url: str | None = Field(
        default=None, description="postgresql://...; unset starts an embedded PostgreSQL"
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt://user:pass@host:1883; unset starts a private Mosquitto"
    )
    mqtt_ca_file: str | None = None
    secret_key: SecretStr | None = Field(
        default=None, description="signs login sessions; required in production"
    )
    admin_username: str = "admin"
    admin_password: SecretStr | None = Field(
        default=None, description="creates the first admin when there is none"
    )
    session_hours: float = 12.0

    api_host: str = "127.0.0.1"
    api_port: int = 8080

    ingest_client_id: str = Field(
        default_factory=lambda: f"ingest-{socket.gethostname()}",
        description="stable per worker: the broker holds this session's share while it is away",
    )
    ingest_share_group: str = "ingest"
    ingest_session_expiry_s: int = 7 * 24 * 3600
    ingest_receive_maximum: int = 2000
    ingest_batch_events: int = 5000
    ingest_linger_ms: int = 20
    ingest_max_future_s: int = 300

    retention_days: int = 365
    compress_after_days: int = 7
    log_level: str = "INFO"

    # Package SSCCs: the GS1 company prefix they are made from (the default is GS1's own
    # example prefix: fine for a demo, wrong on real labels) and the extension digit.
    gs1_company_prefix: str = Field(default="0614141", pattern=r"^[0-9]{6,12}$")
    sscc_extension_digit: int = Field(default=0, ge=0, le=9)
    # EPCIS export (docs/epcis.md): each site's GLN makes its read points SGLNs (unset: a
    # private urn:tracklane:site:... URI); our own GLN names the orders we issue.
    epcis_site_glns: dict[str, Annotated[str, Field(pattern=r"^[0-9]{13}$")]] = Field(
        default_factory=dict, description='JSON: {"wh1": "<13-digit GLN>"}'
    )
    epcis_party_gln: str | None = Field(default=None, pattern=r"^[0-9]{13}$")
    # An order that wants more than stock holds: "warn" creates it and opens an oversell
    # exception; "refuse" turns it away with the shortfall.
    oversell_policy: Literal["warn", "refuse"] = "warn"

    # Geofencing (issue 5): each order's destination fence, when none is drawn, is a circle
    # of this radius around its address; a stop is "arriving" when its ETA is under
    # arriving_eta_min minutes or the vehicle is within approach_radius_m of it; a vehicle
    # with loads silent for stale_tracker_min minutes opens a stale-tracker exception.
    default_fence_radius_m: float = Field(default=150.0, gt=0, le=50_000)
    arriving_eta_min: float = Field(default=10.0, gt=0, le=600)
    approach_radius_m: float = Field(default=1_000.0, gt=0, le=100_000)
    stale_tracker_min: float = Field(default=10.0, gt=0, le=1440)
    # The fence hysteresis (geofence/state.py FenceParams): a fix counts as inside when it is
    # fence_inner_margin_m inside the edge, outside when fence_outer_margin_m beyond it, and
    # a crossing is confirmed after fence_min_dwell_s on the new side.
    fence_min_dwell_s: float = Field(default=60.0, ge=0, le=600)
    fence_inner_margin_m: float = Field(default=15.0, ge=0, le=1_000)
    fence_outer_margin_m: float = Field(default=30.0, ge=0, le=1_000)

    # The live map (issue 6): base tiles for the dashboard's map ("" shows no tiles: fences,
    # vehicles and trails on a plain background), and the live stream's pacing per client.
    map_tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    map_tile_attribution: str = "&copy; OpenStreetMap contributors"
    live_min_frame_interval_ms: float = Field(default=50.0, ge=0, le=5_000)
    live_event_queue: int = Field(default=500, ge=10, le=100_000)

    # Customer notifications (issue 7, docs/notifications.md): the mail server the sender
    # uses, as smtp://host:port (plain, for a local sink), smtp+starttls://host:587 or
    # smtps://host:465 (implicit TLS), with optional user:password@ (URL-encoded); unset sends
    # no mail. smtp_from is the From header of every message.
    smtp_url: SecretStr | None = Field(default=None, description="the mail server")
    smtp_from: str = "Tracklane <notifications@localhost>"
    # SMS through Apprise: a URL of your SMS provider with `{phone}` where the customer's
    # number goes (e.g. twilio://SID:TOKEN@+15550001111/{phone}); unset sends no SMS.
    sms_url: SecretStr | None = Field(default=None, description="Apprise URL with {phone}")
    # Where customers reach the tracking page: links in messages are {public_url}/t/{token}.
    public_url: str = Field(default="http://127.0.0.1:8080", pattern=r"^https?://")
    # A tracking link works until this many days after the order is delivered or cancelled.
    tracking_link_days: int = Field(default=14, ge=1, le=365)
    # Guessing tokens: requests to /t/... per client address and minute, and unknown tokens.
    tracking_rate_per_min: int = Field(default=60, ge=1, le=10_000)
    tracking_misses_per_min: int = Field(default=10, ge=1, le=10_000)
    # An ETA that moved this many minutes from what the customer was last told is news (at
    # most eta_moved_max messages per order).
    notify_eta_moved_min: float = Field(default=15.0, gt=0, le=24 * 60)
    notify_eta_moved_max: int = Field(default=3, ge=0, le=20)
    # How often the sender looks for due notifications.
    notify_interval_s: float = Field(default=2.0, gt=0, le=300)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("smtp://", "smtps://", "smtp+starttls://")
        ):
            raise ValueError(
                "TRACKLANE_SMTP_URL must start with smtp://, smtps:// or smtp+starttls://"
            )
        return value

    @property
    def model_fields_set_from_env(self) -> set[str]:
        """TRACKLANE_* names given explicitly (environment, .env or keyword)."""
        return {f"TRACKLANE_{name.upper()}" for name in self.model_fields_set}

    def check_production(self) -> None:
        """Refuse to run production on defaults; each message names the variable to set."""
        if self.mode != "production":
            return
        problems = []
        secret = self.secret_key.get_secret_value() if self.secret_key else ""
        if secret.lower() in KNOWN_DEV_SECRETS or len(secret) < MIN_SECRET_LENGTH:
            problems.append(
                f"TRACKLANE_SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters (e.g. `openssl rand -hex 32`)"
            )
        if self.admin_password is not None:
            pw = self.admin_password.get_secret_value()
            if pw.lower() in KNOWN_DEV_SECRETS or len(pw) < 12:
                problems.append("TRACKLANE_ADMIN_PASSWORD is a default or shorter than 12")
        if not self.database_url:
            problems.append("TRACKLANE_DATABASE_URL must point at the production PostgreSQL")
        if not self.mqtt_url:
            problems.append("TRACKLANE_MQTT_URL must point at the production broker")
        if "TRACKLANE_INGEST_CLIENT_ID" not in self.model_fields_set_from_env:
            problems.append(
                "TRACKLANE_INGEST_CLIENT_ID must be set, stable and different for each ingest "
                "worker (e.g. ingest-1, ingest-2): the broker keeps a share of the traffic for "
                "a worker's session while it is away, so a worker must come back as itself "
                "(retire one for good with `tracklane ingest drain`)"
            )
        if "TRACKLANE_GS1_COMPANY_PREFIX" not in self.model_fields_set_from_env:
            problems.append(
                "TRACKLANE_GS1_COMPANY_PREFIX must be set to your GS1 company prefix: package "
                "labels (SSCCs) are made from it, and the default is GS1's example prefix"
            )
        if "TRACKLANE_PUBLIC_URL" not in self.model_fields_set_from_env:
            problems.append(
                "TRACKLANE_PUBLIC_URL must be set to the address customers reach this service "
                "at (e.g. https://track.example.com): tracking links in their messages use it"
            )
        if problems:
            raise ConfigError("production mode refuses to start:\n  - " + "\n  - ".join(problems))


def unknown_variables(
    environ: Mapping[str, str], env_file: Path | None = Path(".env")
) -> list[str]:
    """TRACKLANE_* names in the environment or .env file that are not settings: typos."""
    names = set(environ)
    if env_file is not None and env_file.is_file():
        names |= {k for k in dotenv_values(env_file) if k}
    known = {f"TRACKLANE_{name.upper()}" for name in Settings.model_fields}
    # Variables read by other parts of Tracklane, not by the service settings.
    known |= {
        "TRACKLANE_TEST_DATABASE_URL",
        "TRACKLANE_TEST_TIMESCALE_URL",
        "TRACKLANE_BENCH_DATABASE_URL",
        "TRACKLANE_NEW_USER_PASSWORD",
    }
    return sorted(n for n in names if n.upper().startswith("TRACKLANE_") and n.upper() not in known)
