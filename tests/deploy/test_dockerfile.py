"""deploy/Dockerfile linted for what matters (no Docker daemon here): multi-stage, non-root, a /health check,
and a build context (.dockerignore) that carries what the COPYs need and nothing else."""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

from tests.deploy.common import DEPLOY, ROOT, compose

DOCKERFILE = DEPLOY / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last:]


def test_multi_stage_and_the_runtime_stage_is_non_root() -> None:
    froms = [rest for word, rest in _instructions() if word == "FROM"]
    assert len(froms) >= 2 and any(" AS build" in f for f in froms)
    final = _final_stage()
    assert any(word == "COPY" and rest.startswith("--from=build") for word, rest in final)
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    # no compiler toolchain or pip cache carried into the runtime stage
    assert not any(word == "RUN" and "pip install" in rest for word, rest in final)


def test_healthcheck_hits_health_without_curl() -> None:
    checks = [rest for word, rest in _final_stage() if word == "HEALTHCHECK"]
    assert len(checks) == 1
    command = json.loads(checks[0][checks[0].index("CMD") + 3:].strip())
    assert command[:2] == ["python", "-c"] and "/health" in command[2] and "curl" not in checks[0]
    compile(command[2], "<healthcheck>", "exec")  # it is Python that runs


def test_installs_pinned_dependencies_not_an_editable_tree() -> None:
    runs = " ".join(rest for word, rest in _instructions() if word == "RUN")
    assert "pip install -e" not in runs and "pip install --no-deps ." in runs
    assert "['project']['dependencies']" in runs  # pyproject's exact pins, nothing resolved at build time
    assert re.search(r'^\s*"[a-z0-9\[\]_.-]+==[^"]+",$', (ROOT / "pyproject.toml").read_text(), re.M)
    cmd = [rest for word, rest in _instructions() if word == "CMD"][-1]
    assert json.loads(cmd)[0] == "appview"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes (enough for this file's patterns)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        p = pattern[1:] if negate else pattern
        p = p.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if p.startswith("**/"):
            hit = any(fnmatch.fnmatch(part, p[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatch(prefix, p) for prefix in prefixes)
        if hit:
            ignored = not negate
    return ignored


def test_the_build_context_has_what_the_copies_need_and_not_the_rest() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    sources = [rest.split()[0] for word, rest in _instructions() if word == "COPY" and not rest.startswith("--")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is copied but .dockerignore leaves it out"
    for sample in (Path("core/db/schema.py"), Path("lexicons/fm/plyr/comment.json"), Path("migrations/env.py")):
        assert not _ignored(str(sample), patterns), sample
    for heavy in (".venv/bin/python", "data/pg/PG_VERSION", ".git/HEAD", "tests/conftest.py",
                  "tests/localnet/node_modules/x", "core/__pycache__/x.pyc", "bench/read.py"):
        assert _ignored(heavy, patterns), heavy


def test_compose_builds_this_file_from_the_repository_root() -> None:
    for service in compose()["services"].values():
        if "build" in service:
            assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
