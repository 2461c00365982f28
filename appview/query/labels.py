"""Labels on read: which operator labels apply to a record now, and a SQL predicate that hides them.

Effective = the latest statement of each (labeler, subject, value) is not a negation and has not
expired (`exp` is judged here, at read time, so nothing has to rewrite the projection when a label
runs out). Account-level labels (subject = a DID) apply to every record of that account.

Policy (plyr.md §3.4, `core.labels`): `!takedown`, `!hide`, `!suspend`, `copyright-violation` hide a
record on every surface; adult values (`sexual`, `porn`, `nudity`, `graphic-media`), from an operator
label or the record's self-labels, hide it on LIST surfaces (feeds, search, top, radio) unless the
viewer opted in or owns it, and never on VIEW surfaces (artist page, album, playlist, likes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from psycopg import AsyncConnection, sql

from core.labels import ADULT, HIDE_EVERYWHERE

Context = Literal["list", "view"]

EFFECTIVE = "NOT l.neg AND (l.exp IS NULL OR l.exp > now())"

_LABELS_FOR = f"""
SELECT s.uri, array_agg(DISTINCT l.val ORDER BY l.val)
FROM unnest(%(uris)s::text[]) AS s(uri)
JOIN label l ON l.uri = s.uri
    OR l.uri = CASE WHEN s.uri LIKE 'at://%%' THEN split_part(substr(s.uri, 6), '/', 1) END
WHERE {EFFECTIVE} AND (%(labelers)s::text[] IS NULL OR l.src = ANY(%(labelers)s::text[]))
GROUP BY s.uri
"""


async def labels_for(
    conn: AsyncConnection, uris: Sequence[str], *, labelers: Sequence[str] | None = None
) -> dict[str, list[str]]:
    """{uri: sorted effective operator label values} for `uris` in one query (account labels included).

    URIs without labels are absent. `labelers` restricts to those labeler DIDs (None: all we follow).
    Self-labels are not here: they are in `track.self_labels`.
    """
    if not uris:
        return {}
    async with conn.cursor() as cur:
        await cur.execute(_LABELS_FOR, {"uris": list(uris), "labelers": list(labelers) if labelers else None})
        return {uri: list(vals) for uri, vals in await cur.fetchall()}


def _has_label(uri: sql.Composable, did: sql.Composable | None, values: Sequence[str]) -> sql.Composed:
    subject = (
        sql.SQL("l.uri = {}").format(uri) if did is None
        else sql.SQL("l.uri IN ({}, {})").format(uri, did)
    )
    return sql.SQL("EXISTS (SELECT 1 FROM label l WHERE {} AND {} AND l.val = ANY({}))").format(
        subject, sql.SQL(EFFECTIVE), sql.Literal(list(values))
    )


def hidden_by_labels(
    alias: str = "t",
    *,
    context: Context = "list",
    show_adult: bool = False,
    viewer_did: str | None = None,
    uri_column: str = "uri",
    did_column: str | None = "did",
    self_labels_column: str | None = "self_labels",
) -> sql.Composed:
    """A boolean SQL expression, true when the row `alias` must not be shown; splice as `NOT (…)`.

    Example: ``sql.SQL("SELECT … FROM track t WHERE NOT ({})").format(hidden_by_labels("t"))``.
    Values are embedded as literals, so the expression carries no parameters of its own.
    `did_column` (the author) makes account-level labels apply; `self_labels_column` (a jsonb array of
    strings, as `track.self_labels`) makes adult self-labels count on LIST surfaces.
    """
    uri = sql.Identifier(alias, uri_column)
    did = sql.Identifier(alias, did_column) if did_column else None
    hidden = _has_label(uri, did, HIDE_EVERYWHERE)
    if context == "view" or show_adult:
        return sql.SQL("({})").format(hidden)
    adult: sql.Composable = _has_label(uri, did, ADULT)
    if self_labels_column:
        adult = sql.SQL("({} OR {} ?| {})").format(
            adult, sql.Identifier(alias, self_labels_column), sql.Literal(list(ADULT))
        )
    if viewer_did and did is not None:
        adult = sql.SQL("({} AND {} <> {})").format(adult, did, sql.Literal(viewer_did))
    return sql.SQL("({} OR {})").format(hidden, adult)
