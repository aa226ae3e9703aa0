"""The JSON API (FastAPI): thin adapters over services. OpenAPI at /docs."""
