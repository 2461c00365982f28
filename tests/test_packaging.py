"""A non-editable install carries the lexicons and the migrations: the tree setuptools builds a wheel from
(`build_py`, driven by pyproject's package data) has them beside `core/`, and the code finds them there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "core", "ingester", "appview", "cli", "lexicons", "migrations")


def _build(tmp: Path) -> Path:
    src, out = tmp / "src", tmp / "out"
    src.mkdir()
    for name in SOURCES:  # a copy: setuptools writes build metadata next to the sources
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name)
    done = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py",
                           "--build-lib", str(out)], cwd=src, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out


def _run(out: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(out))
    return subprocess.run([sys.executable, "-c", code], cwd=out.parent, env=env, capture_output=True, text=True,
                          timeout=120)


def test_built_tree_ships_every_lexicon_and_migration(tmp_path: Path) -> None:
    out = _build(tmp_path)
    shipped = sorted(p.relative_to(out / "lexicons") for p in (out / "lexicons").rglob("*.json"))
    assert shipped == sorted(p.relative_to(ROOT / "lexicons") for p in (ROOT / "lexicons").rglob("*.json"))
    assert sorted(p.name for p in (out / "migrations" / "versions").glob("*.py")) == \
        sorted(p.name for p in (ROOT / "migrations" / "versions").glob("*.py"))
    assert (out / "migrations" / "env.py").is_file() and (out / "migrations" / "script.py.mako").is_file()

    # imported from the built tree (not the checkout), the code loads the shipped copies
    check = _run(out, "import core.lexicon as L, core.db.migrate as M\n"
                      "from ingester.validate.records import RecordValidator\n"
                      f"assert str(L.LEXICON_DIR).startswith({str(out)!r}), L.LEXICON_DIR\n"
                      f"assert str(M.MIGRATIONS_DIR).startswith({str(out)!r}), M.MIGRATIONS_DIR\n"
                      "v = RecordValidator()\n"
                      "print(len(v.lexicons.collections), v.check('fm.plyr.like', 'x', {}))")
    assert check.returncode == 0, check.stderr
    assert check.stdout.split()[0] == "14" and "no $type" in check.stdout  # plyr + teal + app.bsky.actor.profile


def test_missing_lexicons_are_a_start_up_error_naming_the_path(tmp_path: Path) -> None:
    out = _build(tmp_path)
    shutil.rmtree(out / "lexicons")
    started = _run(out, "from cli.main import main; raise SystemExit(main(['ingest']))")
    assert started.returncode == 2, started.stdout + started.stderr
    assert f"lexicon folder {out / 'lexicons'} does not exist" in started.stderr
