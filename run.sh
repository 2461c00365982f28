#!/usr/bin/env bash
# Install (first time, or when pyproject.toml changed) and start the whole AppView on embedded defaults:
# embedded Postgres + data under ./data, migrations, the ingester and the API on :8080.
# DATABASE_URL, FIREHOSE_HOSTS, PLC_URL, … switch to real infrastructure (see README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash ./install.sh
exec .venv/bin/appview "${@:-run}"
