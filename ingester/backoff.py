"""Waiting between retries without delaying shutdown (the policy itself lives in `core.retry`)."""

from __future__ import annotations

from core.retry import pause

__all__ = ["pause"]
