"""album slugs as plyr.fm derives them (stored generated columns)

Revision ID: 0014
Revises: 0007
"""
from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0010'
branch_labels = None
depends_on = None

# plyr.fm's slugify (backend/utilities/slugs.py): NFKD → ASCII, lower case, keep [a-z0-9], whitespace
# (Python's \s after the ASCII fold: \t\n\v\f\r, \x1c-\x1f, space) → '-', collapse and trim dashes, cut
# to 100 at a dash; 'untitled' when nothing is left. appview/query/albums.py `slugify` is the same in
# Python; tests/appview/test_albums.py checks they agree on random text.
_FUNCTION = r"""CREATE OR REPLACE FUNCTION public.plyr_slug(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
SELECT coalesce(nullif(CASE
         WHEN length(s_) <= 100 THEN s_
         WHEN strpos(reverse(left(s_, 100)), '-') BETWEEN 1 AND 99
           THEN left(s_, 100 - strpos(reverse(left(s_, 100)), '-'))
         ELSE left(s_, 100) END, ''), 'untitled')
  FROM (SELECT btrim(regexp_replace(regexp_replace(regexp_replace(
          lower(regexp_replace(normalize($1, NFKD), '[^\x01-\x7f]', '', 'g')),
          '[^a-z0-9\t\n\r\v\f\x1c-\x1f -]', '', 'g'),
          '[\t\n\r\v\f\x1c-\x1f ]+', '-', 'g'),
          '-+', '-', 'g'), '-') AS s_) slug_
$$"""

# (table, column, expression, index name, index columns, index predicate) — core/db/schema.py mirrors these.
_COLUMNS = (
    ("track", "album_slug", "CASE WHEN btrim(album) <> '' THEN public.plyr_slug(album) END",
     "track_album_slug", "did, album_slug, sort_at, id", "album_slug IS NOT NULL"),
    ("list", "slug", "coalesce(public.plyr_slug(name), 'untitled')",
     "list_album_slug", "did, slug", "list_type = 'album'"),
)


def upgrade() -> None:
    op.execute(_FUNCTION)
    for table, column, expr, index, cols, where in _COLUMNS:
        op.execute(f'ALTER TABLE "{table}" ADD COLUMN {column} text GENERATED ALWAYS AS ({expr}) STORED')
        op.execute(f'CREATE INDEX {index} ON "{table}" ({cols}) WHERE {where}')


def downgrade() -> None:
    for table, column, _expr, index, _cols, _where in _COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS {index}")
        op.execute(f'ALTER TABLE "{table}" DROP COLUMN IF EXISTS {column}')
    op.execute("DROP FUNCTION IF EXISTS public.plyr_slug(text)")
