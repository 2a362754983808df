"""The district's operator API over HTTP: one module per route group, models, OpenAPI."""
