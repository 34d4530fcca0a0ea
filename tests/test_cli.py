"""The `tracklane` command line, run as a user would run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from ingest_service.auth.passwords import verify_secret
from tests.mqtt_helpers import wait_until
from tracklane.embedded.broker import free_port

CONFIGS = Path(__file__).resolve().parent.parent / "firmware_configs"


def tracklane(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
    return subprocess.run(
        [sys.executable, "-m", "tracklane", *args],
        env={**base, **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_db_migrate_reports_the_storage_mode(empty_database_url: str) -> None:
    result = tracklane("db", "migrate", env={"TRACKLANE_DATABASE_URL": empty_database_url})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["storage"]["mode"] == "postgresql"


def test_user_add_creates_a_user_who_can_log_in_and_refuses_short_passwords(
    database_url: str,
) -> None:
    env = {"TRACKLANE_DATABASE_URL": database_url}
    ok = tracklane(
        "user", "add", "dispatch-1", "--role", "dispatcher",
        env={**env, "TRACKLANE_NEW_USER_PASSWORD": "a-long-enough-password"},
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    with psycopg.connect(database_url) as conn:
        role, password_hash = conn.execute(
            "SELECT role, password_hash FROM users WHERE username = 'dispatch-1'"
        ).fetchone()
    assert role == "dispatcher"
    assert verify_secret(password_hash, "a-long-enough-password")

    short = tracklane(
        "user", "add", "dispatch-2", "--role", "dispatcher",
        env={**env, "TRACKLANE_NEW_USER_PASSWORD": "short"},
    )  # fmt: skip
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    bad_role = tracklane("user", "add", "x", "--role", "boss", env=env)
    assert bad_role.returncode == 2
    assert "Invalid value for '--role'" in bad_role.stderr and "'boss'" in bad_role.stderr


def test_check_config_accepts_the_shipped_files_and_names_a_typo(tmp_path: Path) -> None:
    shipped = sorted(str(p) for p in CONFIGS.glob("*.toml"))
    profiles = sorted(str(p) for p in CONFIGS.glob("profiles/*/*.toml"))
    result = tracklane("edge", "check-config", *shipped, *profiles)
    assert result.returncode == 0, result.stderr
    assert "example-dock-rfid.toml (profiles: dock-door-standard)" in result.stdout
    assert "dock-door-standard.toml (reader profile)" in result.stdout
    typo = tmp_path / "typo.toml"
    typo.write_text((CONFIGS / "demo-dock-a.toml").read_text().replace("[publish]", "[pubish]"))
    result = tracklane("edge", "check-config", str(typo))
    assert result.returncode == 1
    assert "pubish" in result.stderr


def test_check_config_resolves_profiles_and_names_a_missing_one(tmp_path: Path) -> None:
    text = (CONFIGS / "example-dock-rfid.toml").read_text()
    gateway = tmp_path / "dock.toml"
    gateway.write_text(text.replace('"dock-door-standard"', '"dock-door-standrd"'))
    profiles = str(CONFIGS / "profiles")
    result = tracklane("edge", "check-config", str(gateway), "--profiles-dir", profiles)
    assert result.returncode == 1
    assert "unknown reader profile 'dock-door-standrd'" in result.stderr
    assert "dock-door-standard" in result.stderr  # among those available
    gateway.write_text(text)
    result = tracklane("edge", "check-config", str(gateway))  # no profiles/ beside it
    assert result.returncode == 1 and "there is no" in result.stderr


@pytest.mark.slow
def test_serve_on_sigterm_stops_its_embedded_database_and_broker(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLANE_")}
    env.update({"TRACKLANE_DATA_DIR": str(tmp_path), "TRACKLANE_API_PORT": str(port)})
    serve = subprocess.Popen(
        [sys.executable, "-m", "tracklane", "serve"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _healthy(port), timeout=60, what="serve to answer /healthz")
        broker_pid = int((tmp_path / "mosquitto" / "mosquitto.pid").read_text())
        assert (tmp_path / "postgres" / "postmaster.pid").exists()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(30) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
        output = serve.stdout.read() if serve.stdout else ""
    assert not Path(f"/proc/{broker_pid}").exists(), "the private broker stopped"
    assert not (tmp_path / "postgres" / "postmaster.pid").exists(), "the database stopped"
    assert "Traceback" not in output, output[-2000:]


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
