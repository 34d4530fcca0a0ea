"""Configuration: production refuses defaults; every variable is read at start, not import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ingest_service.settings import ConfigError, Settings, unknown_variables

GOOD_SECRET = "x" * 40


def production(**overrides: object) -> Settings:
    values = {
        "mode": "production",
        "secret_key": GOOD_SECRET,
        "database_url": "postgresql://db.example/tracklane",
        "mqtt_url": "mqtt://broker.example:1883",
        "ingest_client_id": "ingest-1",
        "gs1_company_prefix": "4012345",
        "public_url": "https://track.example.com",
    }
    values.update(overrides)
    values = {k: v for k, v in values.items() if v is not ...}  # ... = leave unset
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_production_with_real_values_starts() -> None:
    production().check_production()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"secret_key": None}, "TRACKLANE_SECRET_KEY"),
        ({"secret_key": "change-me"}, "TRACKLANE_SECRET_KEY"),
        ({"secret_key": "short-but-not-default"}, "TRACKLANE_SECRET_KEY"),
        ({"admin_password": "admin"}, "TRACKLANE_ADMIN_PASSWORD"),
        ({"database_url": None}, "TRACKLANE_DATABASE_URL"),
        ({"mqtt_url": None}, "TRACKLANE_MQTT_URL"),
        ({"ingest_client_id": ...}, "TRACKLANE_INGEST_CLIENT_ID"),
        ({"gs1_company_prefix": ...}, "TRACKLANE_GS1_COMPANY_PREFIX"),
        ({"public_url": ...}, "TRACKLANE_PUBLIC_URL"),
    ],
)
def test_production_refuses_defaults_and_names_the_variable(
    overrides: dict[str, object], named: str
) -> None:
    with pytest.raises(ConfigError) as err:
        production(**overrides).check_production()
    assert named in str(err.value)


def test_dev_mode_needs_nothing() -> None:
    Settings(_env_file=None).check_production()  # type: ignore[call-arg]


def test_a_misspelt_variable_is_named_and_other_programs_variables_are_not(tmp_path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("OTHER_TOOL_TOKEN=x\nTRACKLANE_SECRET_KEY=y\nTRACKLANE_SECRT_KEY=z\n")
    environ = {"PATH": "/bin", "TRACKLANE_DATABSE_URL": "postgresql://typo"}
    assert unknown_variables(environ, env_file) == [
        "TRACKLANE_DATABSE_URL",
        "TRACKLANE_SECRT_KEY",
    ]


def test_a_bad_value_is_reported_without_echoing_it(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
    env.update({"TRACKLANE_API_PORT": "secret-looking-value", "TRACKLANE_DATBASE_URL": "x"})
    result = subprocess.run(
        [sys.executable, "-m", "tracklane", "db", "migrate"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "TRACKLANE_API_PORT" in result.stderr
    assert "TRACKLANE_DATBASE_URL is not a Tracklane setting" in result.stderr
    assert "secret-looking-value" not in result.stderr


def test_serve_in_production_without_secrets_exits_with_the_reason(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
    env.update({"TRACKLANE_MODE": "production", "TRACKLANE_DATA_DIR": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-m", "tracklane", "serve"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "production mode refuses to start" in result.stderr
    assert "TRACKLANE_SECRET_KEY" in result.stderr
    assert not (tmp_path / "postgres").exists(), "nothing was started"
