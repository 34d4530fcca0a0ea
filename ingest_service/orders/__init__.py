"""Orders in PostgreSQL: create, import, read, change, cancel. The rules are in `orders`."""
