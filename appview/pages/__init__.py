"""Human-facing pages served by the API itself, with no external assets: the status page at `/` and the
API documentation at `/docs` (Swagger UI), whose scripts come from a pinned PyPI package."""
