"""The dispatcher's dashboard and the dock screens: static pages the API serves at `/`.

`mount_dashboard` adds them to an app; the map library comes from the xstatic wheels.
(Skeleton: the pages arrive with issue 6; see docs/live-map.md.)
"""

from __future__ import annotations

from typing import Any


def mount_dashboard(app: Any, *, tile_url: str, tile_attribution: str) -> None:
    """Serve the dashboard at `/` (a mount: it must come after every API route)."""
