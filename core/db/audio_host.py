"""`track.audio_host` (migration 0019), part of `core.db.schema` (which imports this module at its end).

The host an `audioUrl` names, as the playability rule reads it (`core.blobstore.playability.AUDIO_HOST_SQL`):
a STORED generated column, so the projector writes nothing new, a rebuild (tables created from this
metadata) recreates it, and reads compare a column instead of running a regex per track.
"""

from __future__ import annotations

from sqlalchemy import Column, Computed, Text

from core.blobstore.playability import AUDIO_HOST_SQL
from core.db.schema import track

track.append_column(Column("audio_host", Text, Computed(AUDIO_HOST_SQL, persisted=True)))
