"""What the deploy tests share: the files under deploy/ and the names of every real setting."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from appview.settings import AppviewSettings
from core.settings import CoreSettings
from ingester.settings import IngesterSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def setting_names() -> set[str]:
    """Every environment variable the `appview` command reads (the README's configuration table has them all)."""
    names = set()
    for cls in (CoreSettings, IngesterSettings, AppviewSettings):
        for name, f in cls.model_fields.items():
            names.add(f.validation_alias if isinstance(f.validation_alias, str) else name.upper())
    return names


_DEFAULTED = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def interpolate(text: str) -> str:
    """Compose's `${VAR:-default}` with nothing set in the environment: the defaults the file ships with."""
    return _DEFAULTED.sub(lambda m: m.group(2) or "", text)


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded
