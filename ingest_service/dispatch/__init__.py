"""Dispatch over the API: vehicles, dock doors, trips and their departure, exceptions, and
the scans nobody claimed. Async SQL on the API's pool; the rules come from the pure `orders`
package (lifecycle, `short_load`, the exception status table)."""
