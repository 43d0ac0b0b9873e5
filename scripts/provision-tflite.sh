#!/usr/bin/env bash
# Provisions the prebuilt TensorFlow Lite C runtime (library + headers) into .tflite/, an ignored
# folder that .cargo/config.toml points tflitec at. Everything comes from package registries
# (PyPI wheels, a crates.io tarball): no network access beyond those is needed.
#
#   scripts/provision-tflite.sh [TARGET...]     default: the host, x86_64-unknown-linux-gnu
#
# Per target:
#   x86_64-unknown-linux-gnu   PyPI litert-lm-api==0.18.1  litert_lm/liblitert-lm.so (TfLite 2.23 C API
#                              + XNNPACK; the 2.1.0 ai-edge-litert x86_64 wheel has no C API)
#   aarch64-unknown-linux-gnu  PyPI ai-edge-litert==2.1.0   ai_edge_litert/libLiteRt.so (ARMv8.0-safe:
#                              Pi 4 / Jetson Nano; the LiteRT-LM build needs ARMv8.2)
# Headers: crates.io edgefirst-tflite-sys==0.10.3 plus two small shims written here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.tflite"
cache="$dest/cache"
mkdir -p "$cache"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-unknown-linux-gnu)
PY=${PYTHON:-python3}

fetch_wheel() { # name==version arch
  local spec=$1 arch=$2
  local name=${spec%%==*} version=${spec##*==}
  local pattern="$cache/${name//-/_}-$version-*$arch.whl"
  local found
  found=$(ls $pattern 2>/dev/null | head -n1 || true)
  if [ -z "$found" ]; then
    local plats=()
    for n in 17 27 28 31; do plats+=(--platform "manylinux_2_${n}_$arch"); done
    "$PY" -m pip download -q --no-deps --only-binary=:all: "${plats[@]}" \
      --python-version 3.11 -d "$cache" "$spec" >&2
    found=$(ls $pattern | head -n1)
  fi
  echo "$found"
}

extract_member() { # wheel member out
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import sys, zipfile, shutil
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
import os; os.replace(out + ".part", out)
PYEOF
}

# Headers (target independent).
inc="$dest/include"
if [ ! -f "$inc/tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h" ]; then
  crate="$cache/edgefirst-tflite-sys-0.10.3.crate"
  [ -f "$crate" ] || curl -fsSL --retry 3 -o "$crate" \
    https://static.crates.io/crates/edgefirst-tflite-sys/edgefirst-tflite-sys-0.10.3.crate
  rm -rf "$inc" "$cache/hdr" && mkdir -p "$cache/hdr" "$inc"
  tar -xzf "$crate" -C "$cache/hdr"
  cp -r "$cache/hdr/edgefirst-tflite-sys-0.10.3/tensorflow" "$inc/"
  mkdir -p "$inc/tensorflow/lite/c" "$inc/tensorflow/lite/delegates/xnnpack"
  cat > "$inc/tensorflow/lite/c/c_api.h" <<'H'
/* Public entry point, as in TensorFlow: forwards to the core C API. */
#ifndef TENSORFLOW_LITE_C_C_API_H_
#define TENSORFLOW_LITE_C_C_API_H_
#include "tensorflow/lite/core/c/c_api.h"
#endif
H
  cat > "$inc/tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h" <<'H'
/* XNNPACK delegate C API, reduced to what tflitec calls. The options struct must match the
 * library's size exactly (TfLite 2.2x writes 64 bytes from TfLiteXNNPackDelegateOptionsDefault):
 * the leading fields are TensorFlow's, the rest is kept opaque and only ever copied. */
#ifndef TENSORFLOW_LITE_DELEGATES_XNNPACK_XNNPACK_DELEGATE_H_
#define TENSORFLOW_LITE_DELEGATES_XNNPACK_XNNPACK_DELEGATE_H_
#include <stdint.h>
#include "tensorflow/lite/core/c/common.h"
#ifdef __cplusplus
extern "C" {
#endif
#define TFLITE_XNNPACK_DELEGATE_FLAG_QS8 0x00000001
#define TFLITE_XNNPACK_DELEGATE_FLAG_QU8 0x00000002
typedef struct {
  int32_t num_threads;
  uint32_t flags;
  uint64_t opaque_tail[7];
} TfLiteXNNPackDelegateOptions;
_Static_assert(sizeof(TfLiteXNNPackDelegateOptions) == 64, "must match the library");
TfLiteXNNPackDelegateOptions TfLiteXNNPackDelegateOptionsDefault(void);
TfLiteDelegate* TfLiteXNNPackDelegateCreate(const TfLiteXNNPackDelegateOptions* options);
void TfLiteXNNPackDelegateDelete(TfLiteDelegate* delegate);
#ifdef __cplusplus
}
#endif
#endif
H
fi

for t in "${targets[@]}"; do
  mkdir -p "$dest/$t"
  case "$t" in
    x86_64-unknown-linux-gnu)
      lib="$dest/$t/libtensorflowlite_c.so"
      if [ ! -f "$lib" ]; then
        whl=$(fetch_wheel litert-lm-api==0.18.1 x86_64)
        extract_member "$whl" litert_lm/liblitert-lm.so "$lib"
      fi ;;
    aarch64-unknown-linux-gnu)
      # Named for its SONAME: the binary's DT_NEEDED entry is libLiteRt.so.
      lib="$dest/$t/libLiteRt.so"
      if [ ! -f "$lib" ]; then
        whl=$(fetch_wheel ai-edge-litert==2.1.0 aarch64)
        extract_member "$whl" ai_edge_litert/libLiteRt.so "$lib"
      fi ;;
    *) echo "provision-tflite: no registry-shipped TFLite runtime is known for $t" >&2; exit 2 ;;
  esac
  echo "provision-tflite: $t -> $lib ($(du -h "$lib" | cut -f1))"
done
