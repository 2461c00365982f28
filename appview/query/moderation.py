"""What each surface hides, as SQL predicates over a track alias `t` (plyr.fm's policy, plyr.md §3.4).

- Accounts that are not active (deactivated, takendown, suspended, deleted) are hidden on every
  surface until reactivated (architecture: "hidden until reactivated"); nothing is lost.
- `!takedown`/`!hide` (self or operator) hide a track everywhere.
- Adult labels hide a track in LIST contexts (feeds, top, search, activity) except from its owner;
  VIEW contexts (detail, artist page, album, playlist, a user's likes) show it.
"""

from __future__ import annotations

ADULT_LABELS = ("sexual", "porn", "nudity", "graphic-media")
HIDE_LABELS = ("!takedown", "!hide")


def _arr(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def author_visible(did_expr: str) -> str:
    return f"NOT EXISTS (SELECT 1 FROM actor ma WHERE ma.did = {did_expr} AND NOT ma.active)"


def track_visible(alias: str = "t") -> str:
    """VIEW context: everything an artist page, album or direct link may show."""
    return f"{author_visible(alias + '.did')} AND NOT ({alias}.self_labels ?| {_arr(HIDE_LABELS)})"


def track_listable(alias: str = "t", viewer_param: str = "%(viewer)s") -> str:
    """LIST context: VIEW rules plus adult labels hidden unless the viewer owns the track."""
    return (f"{track_visible(alias)} AND (NOT ({alias}.self_labels ?| {_arr(ADULT_LABELS)})"
            f" OR {alias}.did = {viewer_param})")
