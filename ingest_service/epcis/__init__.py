"""EPCIS export (docs/epcis.md): read scans, receipts and milestones from PostgreSQL into the
rows the pure `epcis` builders take, and page through them."""

from .export import Page, export_page
from .queries import Window

__all__ = ["Page", "Window", "export_page"]
