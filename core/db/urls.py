"""Database URL normalisation: one place that knows the driver prefixes."""

from __future__ import annotations


def libpq_url(url: str) -> str:
    """A URL psycopg accepts (`postgresql://…`)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def sqlalchemy_url(url: str) -> str:
    """A URL SQLAlchemy maps to psycopg 3 (`postgresql+psycopg://…`)."""
    return "postgresql+psycopg://" + libpq_url(url)[len("postgresql://"):]
