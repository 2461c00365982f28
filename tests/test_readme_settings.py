"""README's configuration table names every setting the code reads (a newcomer's only map of them)."""

from __future__ import annotations

import re
from pathlib import Path

from appview.settings import AppviewSettings
from core.settings import CoreSettings
from ingester.settings import IngesterSettings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_in_the_configuration_table() -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", "\n".join(rows)))
    missing = set()
    for cls in (CoreSettings, IngesterSettings, AppviewSettings):
        for name, f in cls.model_fields.items():
            alias = f.validation_alias if isinstance(f.validation_alias, str) else None
            if (alias or name.upper()) not in documented:
                missing.add(alias or name.upper())
    assert not missing, f"settings missing from README's configuration table: {sorted(missing)}"
