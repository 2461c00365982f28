#!/usr/bin/env bash
# Install (first time) and start the whole AppView on embedded defaults:
# embedded Postgres + data under ./data, migrations, the ingester and the API on :8080.
# DATABASE_URL, FIREHOSE_HOSTS, PLC_URL, … switch to real infrastructure (see README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e .
  touch .venv/.installed
fi
exec .venv/bin/appview "${@:-run}"
