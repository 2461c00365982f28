"""Fixtures of the hostile tests: a query helper on the test's database (as in the e2e tests)."""

from __future__ import annotations

from tests.e2e.conftest import q

__all__ = ["q"]
