"""Album slugs (migration 0014), part of `core.db.schema` (which imports this module at its end).

plyr.fm keys an album on (artist, slug of its title) and files a track under the album its `album` name
slugs to (appview/query/albums.py). `public.plyr_slug` (migration 0014) is plyr.fm's slugify. STORED
generated columns, so the projector writes nothing new and a rebuild (tables created from this metadata)
recreates them.
"""

from __future__ import annotations

from sqlalchemy import Column, Computed, Index, Text

from core.db.schema import list_, track

track.append_column(Column(
    "album_slug", Text, Computed("CASE WHEN btrim(album) <> '' THEN public.plyr_slug(album) END", persisted=True)
))
list_.append_column(Column("slug", Text, Computed("coalesce(public.plyr_slug(name), 'untitled')", persisted=True)))
Index("track_album_slug", track.c.did, track.c.album_slug, track.c.sort_at, track.c.id,
      postgresql_where=track.c.album_slug.isnot(None))
Index("list_album_slug", list_.c.did, list_.c.slug, postgresql_where=list_.c.list_type == "album")
