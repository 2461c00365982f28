"""What search may show, as SQL predicates (plyr.fm's LIST-context policy, plyr.md §3.4).

Search is a LIST context: records of accounts that are not active (deactivated, takendown,
suspended, deleted) are hidden until reactivated; tracks self-labelled `!takedown`/`!hide` are
hidden everywhere and tracks with an adult self-label are hidden unless the viewer owns them.
"""

from __future__ import annotations

from appview.query.moderation import ADULT_LABELS, HIDE_LABELS, labelled


def _arr(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]::text[]"


def author_visible(did_expr: str) -> str:
    """No actor row yet (identity not resolved) counts as active: nothing says otherwise."""
    return f"NOT EXISTS (SELECT 1 FROM actor ma WHERE ma.did = {did_expr} AND NOT ma.active)"


def operator_labels_visible(uri_expr: str, did_expr: str) -> str:
    """Operator labels in search (a LIST context): hide-everywhere and adult labels on the record or its author.

    Must return a SQL boolean that is true when no operator label (from the `label` projection)
    hides the record `uri_expr` or its author `did_expr` in a LIST context, e.g.
    `NOT EXISTS (SELECT 1 FROM label l WHERE l.uri IN ({uri_expr}, {did_expr}) AND l.val = ANY(...))`.
    Every search query (tracks, artists, albums, playlists) ANDs this in, so one edit covers all.
    """
    return f"NOT {labelled(f'{uri_expr}, {did_expr}', HIDE_LABELS + ADULT_LABELS)}"


def track_listable(alias: str, viewer_param: str = "%(viewer)s") -> str:
    t = alias
    return (
        f"{author_visible(t + '.did')} AND NOT ({t}.self_labels ?| {_arr(HIDE_LABELS)})"
        f" AND (NOT ({t}.self_labels ?| {_arr(ADULT_LABELS)}) OR {t}.did = {viewer_param})"
        f" AND {operator_labels_visible(t + '.uri', t + '.did')}"
    )


def list_listable(alias: str) -> str:
    return f"{author_visible(alias + '.did')} AND {operator_labels_visible(alias + '.uri', alias + '.did')}"
