#!/usr/bin/env bash
# Creates tools/.venv with the pinned pipeline requirements (CPU-only TensorFlow);
# --research also installs what tools/research/ needs beyond them (dlib).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
if [ "${1:-}" = "--research" ]; then .venv/bin/pip install -q -r research/requirements.txt; fi
