"""Alembic environment: targets core.db.schema.metadata (the read/write contract)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from core.db.schema import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
