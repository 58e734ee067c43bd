#!/usr/bin/env bash
# Create .venv and install radtranslate. Usage: bash tools/setup.sh [--dev]
#   (no flag)  runtime + training and QA extras (enough for the example)
#   --dev      also the test, lint and reference tools (what CI needs)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
extras="train,qa"
[ "${1:-}" = "--dev" ] && extras="train,qa,dev"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
