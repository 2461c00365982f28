"""Alembic environment: targets core.db.schema.metadata (the read/write contract)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from core.db.connect import MIGRATE_LOCK
from core.db.schema import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            # Every process starting at once (N replicas, a migrate job beside them) would otherwise run the
            # same DDL concurrently (UniqueViolation on pg_type). The lock is transaction-scoped: the next one
            # waits, then finds the version table at head and does nothing.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATE_LOCK})")
            context.run_migrations()
    engine.dispose()


run_migrations_online()
