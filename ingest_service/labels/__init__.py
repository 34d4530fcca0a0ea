"""Package labels: a GS1-128 SSCC barcode with the order, customer and destination."""
