"""Backfill and resync: getRepo snapshots diffed against the log, with live events buffered meanwhile."""
