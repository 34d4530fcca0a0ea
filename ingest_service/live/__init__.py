"""The live stream's server side: the database's notifications, fanned out to WebSockets.

`listener` holds one LISTEN connection per API process, `hub` fans each batch of
notifications out to per-client queues (`client_queue`: coalesced positions, bounded
events), `filters` decides what each client asked for, `session` runs one client's reader,
writer and credential recheck. docs/live-map.md is the contract.
"""

from .client_queue import ClientQueue
from .filters import Filter, Stream, Subscribe, streams_for
from .hub import Hub, LiveOptions
from .listener import APPLICATION_NAME, Listener
from .metrics import LiveMetrics
from .session import close_reason, run_session

__all__ = [
    "APPLICATION_NAME",
    "ClientQueue",
    "Filter",
    "Hub",
    "Listener",
    "LiveMetrics",
    "LiveOptions",
    "Stream",
    "Subscribe",
    "close_reason",
    "run_session",
    "streams_for",
]
