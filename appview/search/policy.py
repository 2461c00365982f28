"""What search may show: search is a LIST context, so it takes the read side's moderation rules
(`appview/query/moderation.py`) — inactive accounts hidden, hide-everywhere labels and adult labels
(self or operator, on the record or its account) hidden except from the owner."""

from __future__ import annotations

from appview.query.moderation import ADULT_LABELS, HIDE_LABELS, labelled, record_visible, track_listable

__all__ = ["list_listable", "operator_labels_visible", "track_listable"]


def operator_labels_visible(uri_expr: str, did_expr: str) -> str:
    """No hide-everywhere or adult operator label on the record `uri_expr` or its author `did_expr`."""
    return f"NOT {labelled(f'{uri_expr}, {did_expr}', HIDE_LABELS + ADULT_LABELS)}"


def list_listable(alias: str) -> str:
    return f"{record_visible(alias)} AND NOT {labelled(f'{alias}.uri, {alias}.did', ADULT_LABELS)}"
