"""Images that must be blurred: the artwork of records, and the avatars of accounts, carrying an adult label.

plyr.fm keeps this list in its moderation service; on the network the same judgement is a label. An image is
sensitive when an effective operator label with an adult value names its track, its account, or (for an
avatar) the profile record, or when the track self-labels itself adult. Bounded: a moderation list, not a
dump — at most `MAX_IMAGES` URLs, the most recently labelled first.
"""

from __future__ import annotations

from psycopg import AsyncConnection

from appview.query.labels import EFFECTIVE
from core.labels import ADULT

MAX_IMAGES = 10_000

_SQL = f"""
WITH adult AS (
    SELECT l.uri, max(l.seq) AS seq FROM label l
    WHERE l.val = ANY(%(adult)s::text[]) AND {EFFECTIVE} GROUP BY l.uri
), images AS (
    SELECT t.image_url AS url, a.seq FROM adult a JOIN track t ON t.uri = a.uri
    WHERE t.image_url IS NOT NULL
    UNION ALL
    SELECT t.image_url, a.seq FROM adult a JOIN track t ON t.did = a.uri
    WHERE a.uri LIKE 'did:%%' AND t.image_url IS NOT NULL
    UNION ALL
    SELECT p.avatar, a.seq FROM adult a JOIN artist_profile p ON p.did = a.uri OR p.uri = a.uri
    WHERE p.avatar IS NOT NULL
    UNION ALL
    SELECT t.image_url, t.id FROM track t
    WHERE t.self_labels ?| %(adult)s::text[] AND t.image_url IS NOT NULL
)
SELECT url FROM images GROUP BY url ORDER BY max(seq) DESC, url LIMIT %(n)s
"""


async def sensitive_image_urls(conn: AsyncConnection) -> list[str]:
    rows = await (await conn.execute(_SQL, {"adult": list(ADULT), "n": MAX_IMAGES})).fetchall()
    return [str(r[0]) for r in rows]
