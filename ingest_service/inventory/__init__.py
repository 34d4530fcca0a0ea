"""Products and stock: the catalogue, stock per location, movements, the low-stock rule."""
