"""Inbound in PostgreSQL: suppliers, purchase orders, ASNs with their packages, milestones,
notes and attachments, and ASN reminders (docs/inbound.md). The rules are in `inbound`.

Every function that reads or acts on a document takes a `Viewer`: a supplier user sees only
its own supplier's documents, and one that is not linked to a supplier sees none. A document
the viewer may not see is reported as missing (NotFound), never as forbidden, so that a
supplier cannot learn which PO or ASN numbers another supplier has.
"""
