#!/usr/bin/env bash
# Creates tools/.venv with the pinned pipeline requirements (CPU-only TensorFlow).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
