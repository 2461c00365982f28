#!/usr/bin/env bash
# Install everything the tests need (Python deps, the reference PDS + PLC on Node) and run them.
# Postgres: TEST_DATABASE_URL when set, otherwise an embedded one started by the test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="${PYTHON:-python3}"
bash tests/localnet/localnet-setup.sh > .localnet-setup.log 2>&1 &
node_setup=$!
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
if ! wait "$node_setup"; then cat .localnet-setup.log; exit 1; fi
exec .venv/bin/python -m pytest "$@"
