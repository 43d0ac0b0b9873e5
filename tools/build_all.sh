#!/usr/bin/env bash
# Rebuilds every shipped model and its report from ../shared (CPU only, fixed seeds), with the
# pipeline's defaults (the shipped recipe):
#   detector fine-tuning -> detectors (export) -> classifier faces (cropped by the shipped int8
#   detector) -> classifier -> detector evaluation -> models/README.md tables and sha256.
# Needs tools/.venv with tools/requirements.txt (tools/setup-venv.sh). About 1 h 10 min on the
# 2-core build machine. tools/research/ holds the experiments; nothing here runs them.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-.venv/bin/python}
mkdir -p work
t0=$(date +%s)
$PY -m pipeline.detector_train
$PY -m pipeline.detector export
$PY -m pipeline.faces
$PY -m pipeline.classifier
(cd .. && cargo build --release)   # the int8 AP is also measured through the shipped binary
$PY -m pipeline.detector eval
$PY -m pipeline.report
echo "build_all: $(( $(date +%s) - t0 )) s"
