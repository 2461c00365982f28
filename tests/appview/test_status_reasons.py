"""/status shows failure categories, never the stored text in full (it may hold a peer's error text)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from appview.status import reason_category


def test_categories_keep_the_stage_and_the_first_plain_words() -> None:
    assert reason_category("getRepo: timeout") == "getRepo: timeout"
    assert reason_category("getRepo: HTTP 503") == "getRepo: HTTP 503"
    assert reason_category("getRepo: rate limited (429)") == "getRepo: rate limited"
    assert reason_category("DID does not resolve: http_error (https://10.0.0.1: ConnectError: [Errno 111] "
                           "Connection refused)") == "DID does not resolve: http_error"
    assert reason_category("unexpected: ValueError: <script>secret</script>") == "unexpected: ValueError"
    assert reason_category("getRepo: <html>502 Bad Gateway</html>") == "getRepo"
    assert reason_category(None) is None


@given(st.text(max_size=300))
def test_any_stored_text_becomes_a_short_plain_category(text: str) -> None:
    category = reason_category(text)
    assert category is not None and len(category) <= 2 * 48 + 2
    assert re.fullmatch(r"[A-Za-z0-9_ .#:-]*", category)
