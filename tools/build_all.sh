#!/usr/bin/env bash
# Rebuilds every shipped model and its report from ../shared (CPU only, fixed seeds):
#   detector fine-tuning -> detectors (export) -> classifier faces (cropped by the shipped int8
#   detector) -> classifier -> detector evaluation. Needs a venv with tools/requirements.txt (tools/setup-venv.sh).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-.venv/bin/python}
mkdir -p work
t0=$(date +%s)
$PY detector_train.py
$PY detector.py export
$PY faces.py
$PY classifier.py
(cd .. && cargo build --release)   # the int8 AP is also measured through the shipped binary
$PY detector.py eval
$PY report.py
echo "build_all: $(( $(date +%s) - t0 )) s"
