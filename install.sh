#!/usr/bin/env bash
# Install the project into .venv, only when pyproject.toml changed since the last install of these extras.
#   ./install.sh            the service (what ./run.sh needs)
#   ./install.sh test       plus the test dependencies (what ./test.sh needs)
# One line per step with its duration; pip shows its progress on the first (long) install only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PY="${PYTHON:-python3}"
EXTRAS="${1:-}"
SPEC="."
[ -n "$EXTRAS" ] && SPEC=".[$EXTRAS]"
STAMP=".venv/.installed${EXTRAS:+-$EXTRAS}"

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $(( t / 1000 )); }
step() { printf '%s … ' "$1" >&2; STEP_T0=$(now_ms); }
done_step() { local ms=$(( $(now_ms) - STEP_T0 )); printf 'done (%d.%d s)\n' $(( ms / 1000 )) $(( ms % 1000 / 100 )) >&2; }

if [ ! -x .venv/bin/python ]; then
  step "install: creating .venv with $("$PY" --version 2>&1)"
  "$PY" -m venv .venv
  done_step
fi
fresh() { [ -f "$1" ] && [ ! pyproject.toml -nt "$1" ]; }
if fresh "$STAMP"; then
  exit 0
fi
if [ -z "$EXTRAS" ]; then  # the service alone: any install with extras includes it
  for s in .venv/.installed-*; do fresh "$s" && exit 0; done
fi
quiet=(-q)
[ -f "$STAMP" ] || [ -n "$(ls .venv/.installed* 2>/dev/null)" ] || quiet=(--progress-bar on)
if [ "${quiet[0]}" != "-q" ]; then
  echo "install: first install of the Python dependencies into .venv (a few minutes; pip's progress follows)" >&2
fi
step "install: pip"
.venv/bin/pip install -q --upgrade pip
done_step
step "install: the project and its dependencies ($SPEC)"
[ "${quiet[0]}" != "-q" ] && echo >&2
.venv/bin/pip install "${quiet[@]}" -e "$SPEC" 2> >(grep -v -e 'BuildBackendWarning' -e '^ *!!' -e '^ *\*\*\*' -e 'Please be careful' -e 'name as your package' -e 'with strategy' -e 'Editable installation' -e '^ *$' >&2)
done_step
touch "$STAMP"
