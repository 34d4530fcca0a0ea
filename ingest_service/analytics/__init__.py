"""Analytics over the stored history: the queries behind `/api/v1/analytics` (docs/analytics.md).

Each report module reads with plain SQL (buckets with TimescaleDB's `time_bucket` when the
storage mode has it, `date_bin` otherwise) and leaves the arithmetic that deserves its own
tests (percentiles, stage durations, on-time, dwell) to the pure `analytics` package.
"""

from .exceptions import ExceptionsReport, exceptions_report
from .files import XLSX, Sheet, to_csv, to_xlsx
from .on_time import OnTimeReport, on_time_report
from .query import Range, ReportQuery, resolve_range
from .stages import StagesReport, stages_report
from .throughput import ThroughputReport, throughput_report
from .vehicles import VehiclesReport, vehicles_report

__all__ = [
    "XLSX",
    "ExceptionsReport",
    "OnTimeReport",
    "Range",
    "ReportQuery",
    "Sheet",
    "StagesReport",
    "ThroughputReport",
    "VehiclesReport",
    "exceptions_report",
    "on_time_report",
    "resolve_range",
    "stages_report",
    "throughput_report",
    "to_csv",
    "to_xlsx",
    "vehicles_report",
]
