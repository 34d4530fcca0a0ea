"""The order core: lifecycle, scan matching, dispatch rules, exceptions, inventory. Pure.

Nothing here imports I/O: the ingest service and the API load orders from PostgreSQL, ask
this package what follows from a piece of evidence, and store the answer with its evidence.
"""
