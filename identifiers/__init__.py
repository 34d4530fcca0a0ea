"""GS1 and EPC identifiers: element strings, check digits, tag encodings. Pure, no I/O.

Shared by the gateway (which refuses a bad check digit at the dock) and the server (which
finds the SSCC or GTIN in a stored scan to match it to a package or product).
"""
