"""What each surface hides, as SQL predicates over a track alias `t` (plyr.fm's policy, plyr.md §3.4).

- Accounts that are not active (deactivated, takendown, suspended, deleted) are hidden on every
  surface until reactivated (architecture: "hidden until reactivated"); nothing is lost.
- `!takedown`, `!hide`, `!suspend` and `copyright-violation` — as a self-label, or as an effective
  operator label on the record or on its account — hide it everywhere.
- Adult labels (self or operator) hide a track in LIST contexts (feeds, top, search, activity)
  except from its owner; VIEW contexts (detail, artist page, album, playlist, a user's likes) show it.

Operator labels are effective when their latest statement is not a negation and has not expired
(judged here, at read time). Filtering happens in SQL before LIMIT, so pages and counts stay right.
"""

from __future__ import annotations

from core.labels import ADULT, HIDE_EVERYWHERE

ADULT_LABELS = ADULT
HIDE_LABELS = HIDE_EVERYWHERE
# `lab_`: an alias no outer query uses, so a subject expression like `l.did` (a like) stays the outer one.
EFFECTIVE = "NOT lab_.neg AND (lab_.exp IS NULL OR lab_.exp > now())"


def _arr(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]::text[]"


def labelled(subjects: str, values: tuple[str, ...]) -> str:
    """An effective operator label with one of `values` on any of the SQL expressions `subjects`."""
    return (f"EXISTS (SELECT 1 FROM label lab_ WHERE lab_.uri IN ({subjects}) AND {EFFECTIVE}"
            f" AND lab_.val = ANY({_arr(values)}))")


def author_visible(did_expr: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM actor ma WHERE ma.did = {did_expr} AND NOT ma.active)"
            f" AND NOT {labelled(did_expr, HIDE_LABELS)}")


def record_visible(alias: str) -> str:
    """Any record row with `uri` and `did` columns (lists, comments): its author and its own labels."""
    return f"{author_visible(alias + '.did')} AND NOT {labelled(alias + '.uri', HIDE_LABELS)}"


def track_visible(alias: str = "t") -> str:
    """VIEW context: everything an artist page, album or direct link may show."""
    return f"{record_visible(alias)} AND NOT ({alias}.self_labels ?| {_arr(HIDE_LABELS)})"


def track_listable(alias: str = "t", viewer_param: str = "%(viewer)s") -> str:
    """LIST context: VIEW rules plus adult labels hidden unless the viewer owns the track."""
    adult = f"{alias}.self_labels ?| {_arr(ADULT_LABELS)} OR {labelled(f'{alias}.uri, {alias}.did', ADULT_LABELS)}"
    return f"{track_visible(alias)} AND (NOT ({adult}) OR {alias}.did = {viewer_param})"
