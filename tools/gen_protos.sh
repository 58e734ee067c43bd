#!/usr/bin/env bash
# Regenerate the Python gRPC stubs of protos/radtranslate/v1/*.proto.
# Usage: bash tools/gen_protos.sh [OUT_DIR]   (default: the repository root, i.e. in place)
# Needs grpcio-tools (dev extra). Imports in the stubs read `from protos.radtranslate.v1 import ...`.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-.}
PY=${PYTHON:-python}
mkdir -p "$OUT"
"$PY" -m grpc_tools.protoc -I . \
  --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT" \
  protos/radtranslate/v1/translation.proto
