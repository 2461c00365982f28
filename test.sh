#!/usr/bin/env bash
# Install everything the tests need (Python deps when pyproject.toml changed, the reference PDS + PLC on Node)
# and run them. Postgres: TEST_DATABASE_URL when set, otherwise an embedded one started by the test suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
t0=$(date +%s)
bash tests/localnet/localnet-setup.sh > .localnet-setup.log 2>&1 &
node_setup=$!
bash ./install.sh test
if ! wait "$node_setup"; then cat .localnet-setup.log; exit 1; fi
echo "install: the reference PDS + PLC (tests/localnet) ready; setup took $(( $(date +%s) - t0 )) s" >&2
exec .venv/bin/python -m pytest "$@"
