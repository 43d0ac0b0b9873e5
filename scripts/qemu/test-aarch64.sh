#!/usr/bin/env bash
# Builds the test suite for aarch64 and runs it under qemu-user (run-aarch64.sh: Cortex-A72,
# 1 inference thread), one integration test per process (unit tests: one process per binary),
# MASKGATE_TEST_JOBS (default: CPU count) processes at a time.
#
# Why not `cargo test --target ...`: cargo runs the test binaries one after another, and under
# emulation a few single tests (the 100-photo scene slice, the 93-frame door sequence, the
# 96-frame door loop of the allocation test: 397, 306 and 283 s in one run here) keep one core
# busy while the other idles. One process per test, the slow ones started first, lets them
# overlap (the emulated suite on the 2-core build machine: 1279 s under cargo, 841 s this way,
# one full CI run each). Each test's output goes to a log that is printed when it fails; a test
# that is listed but does not report exactly one pass counts as failed, so a renamed or
# filtered-out test cannot pass.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=aarch64-unknown-linux-gnu
runner=scripts/qemu/run-aarch64.sh
jobs=${MASKGATE_TEST_JOBS:-$(nproc)}
# started first, in this order, when present (longest under emulation first); every other test
# follows in list order
slow=(scene_slice_recall_and_mask_accuracy_floors
  masked_person_nobody_then_unmasked_person
  the_door_loop_allocates_nothing_per_frame_after_warm_up
  unmasked_person_then_nobody_without_shared_data
  simulate_prints_json_events_and_dumps_the_display
  bounded_load_run_has_no_failures
  camera_lost_mid_stream_is_reopened_with_back_off
  status_live_view_and_selftest_on_a_realtime_demo_door
  chromium_renders_the_status_page_with_the_decision_and_a_verdict)

# "<kind> <executable>" of every test binary (profile.test; the target's own "test" flag is
# set on the plain binary too)
mapfile -t built < <(cargo test --release --target "$target" --no-run \
  --message-format=json-render-diagnostics \
  | grep -E '"profile":\{[^}]*"test":true' \
  | sed -n 's/.*"kind":\["\([a-z-]*\)"\].*"executable":"\([^"]*\)".*/\1 \2/p')
[ ${#built[@]} -gt 0 ] || { echo "test-aarch64: cargo built no test binaries" >&2; exit 1; }

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# jobs, three lines each: executable, test name (or "-" for all of them), tests expected.
# Integration tests run one per process; unit-test binaries (fast) run whole, as the
# start-up of a process under qemu costs more than their tests.
: >"$logs/rest"
total=0
for b in "${built[@]}"; do
  kind=${b%% *}
  exe=${b#* }
  # a binary that cannot even list its tests (a missing runtime library) fails the run here
  if ! "$runner" "$exe" --list --format terse >"$logs/list" 2>&1; then
    echo "test-aarch64: $exe cannot list its tests:" >&2
    cat "$logs/list" >&2
    exit 1
  fi
  names=$(sed -n 's/: test$//p' "$logs/list")
  n=$(printf '%s' "$names" | grep -c . || true)
  total=$((total + n))
  [ "$n" -gt 0 ] || continue
  if [ "$kind" != test ]; then
    printf '%s\n-\n%s\n' "$exe" "$n" >>"$logs/rest"
    continue
  fi
  for t in $names; do
    q=rest
    for i in "${!slow[@]}"; do [ "${slow[$i]}" != "$t" ] || q=slow.$i; done
    printf '%s\n%s\n1\n' "$exe" "$t" >>"$logs/$q"
  done
done
for i in "${!slow[@]}"; do cat "$logs/slow.$i" 2>/dev/null || true; done >"$logs/queue"
cat "$logs/rest" >>"$logs/queue"
echo "test-aarch64: $total tests in ${#built[@]} binaries, $(( $(wc -l <"$logs/queue") / 3 )) processes, $jobs at a time"

run_one() {
  local exe=$1 name=$2 want=$3 bin label log t0 dt rc=0 filter=()
  bin=$(basename "$exe")
  bin=${bin%-*}
  if [ "$name" = - ]; then
    label="($want tests)"
  else
    label=$name
    filter=(--exact "$name" --test-threads 1)
  fi
  log=$LOGS/$bin.$label.log
  t0=$(date +%s)
  "$RUNNER" "$exe" "${filter[@]}" >"$log" 2>&1 || rc=$?
  dt=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ] && grep -q "^test result: ok\. $want passed; 0 failed" "$log"; then
    echo "ok     $dt s  $bin::$label"
  else
    echo "FAILED $dt s  $bin::$label (exit $rc)"
    echo "$log" >>"$LOGS/failed"
  fi
}
export -f run_one
export LOGS=$logs RUNNER=$runner
t0=$(date +%s)
xargs -d '\n' -n 3 -P "$jobs" bash -c 'run_one "$@"' _ <"$logs/queue"
if [ -s "$logs/failed" ]; then
  while read -r log; do
    echo "---- $(basename "$log" .log) ----"
    cat "$log"
  done <"$logs/failed"
  echo "test-aarch64: $(wc -l <"$logs/failed") test processes FAILED ($(( $(date +%s) - t0 )) s)"
  exit 1
fi
echo "test-aarch64: all $total tests passed ($(( $(date +%s) - t0 )) s)"
