"""search: unaccent, tsvector and trigram indexes

Revision ID: 0003
Revises: 0002

Generated STORED columns hold the normalised text (`public.search_norm`) and the title/name
tsvector; one GIN index per searched expression (trigram or tsvector, never GiST: infra.md §4),
plus btrees for the exact and prefix tiers of track titles and artist strings.
Must agree with the "search support" section of core/db/schema.py.
"""
from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# unaccent() is STABLE (it reads a dictionary), so it cannot feed an index or a generated column;
# the wrapper pins the dictionary by schema-qualified name, which makes IMMUTABLE honest and keeps
# pg_dump/restore (empty search_path) working.
_FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION public.immutable_unaccent(text) RETURNS text
       LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
       AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, $1) $$""",
    # lower(unaccent(x)), curly quotes straightened, then apostrophes dropped: "Don’t" = "dont".
    """CREATE OR REPLACE FUNCTION public.search_norm(text) RETURNS text
       LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
       AS $$ SELECT replace(translate(lower(public.immutable_unaccent($1)), '’‘“”', '''''""'), '''', '') $$""",
)

_COLUMNS = (
    ("track", "search_title", "text", "public.search_norm(title)"),
    ("track", "search_artist", "text", "public.search_norm(artist)"),
    ("track", "search_tsv", "tsvector", "to_tsvector('simple'::regconfig, public.search_norm(title))"),
    ("list", "search_name", "text", "public.search_norm(name)"),
    ("list", "search_tsv", "tsvector", "to_tsvector('simple'::regconfig, coalesce(public.search_norm(name), ''))"),
    ("actor", "search_handle", "text", "public.search_norm(handle)"),
)

_INDEXES = (
    ("track_search_title_trgm", "track", "search_title gin_trgm_ops"),
    ("track_search_artist_trgm", "track", "search_artist gin_trgm_ops"),
    ("track_search_tsv", "track", "search_tsv"),
    ("track_search_title_btree", "track", "search_title text_pattern_ops, id", "btree"),
    ("track_search_artist_btree", "track", "search_artist text_pattern_ops, did", "btree"),
    ("list_search_name_trgm", "list", "search_name gin_trgm_ops"),
    ("list_search_tsv", "list", "search_tsv"),
    ("actor_search_handle_trgm", "actor", "search_handle gin_trgm_ops"),
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
    for ddl in _FUNCTIONS:
        op.execute(ddl)
    for table, column, type_, expr in _COLUMNS:
        op.execute(f'ALTER TABLE "{table}" ADD COLUMN {column} {type_} GENERATED ALWAYS AS ({expr}) STORED')
    for name, table, target, *method in _INDEXES:
        op.execute(f'CREATE INDEX {name} ON "{table}" USING {method[0] if method else "gin"} ({target})')
    op.execute("CREATE INDEX actor_inactive ON actor (did) WHERE NOT active")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS actor_inactive")
    for name, *_ in reversed(_INDEXES):
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for table, column, _type, _expr in reversed(_COLUMNS):
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN IF EXISTS {column}')
    op.execute("DROP FUNCTION IF EXISTS public.search_norm(text)")
    op.execute("DROP FUNCTION IF EXISTS public.immutable_unaccent(text)")
