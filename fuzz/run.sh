#!/usr/bin/env bash
# Time-boxed fuzz smoke for koogallery-core: builds every cargo-fuzz target, runs each for a bounded time and fails
# on any crash (a panic in an oracle of `koogallery_core::fuzzing`, a timeout or running out of memory).
#
# Usage: fuzz/run.sh [SECONDS_PER_TARGET]        (default 25: 21 targets, 2 at a time, is about 4.6 min of
#                                                 fuzzing; cold build + run measured at about 7-8 min on 2 busy cores)
# Environment:
#   FUZZ_JOBS=N          targets run at once (default: number of CPUs)
#   FUZZ_TARGETS="a b"   only these targets (default: every target of `cargo fuzz list`)
#   FUZZ_SANITIZER=...   cargo-fuzz sanitizer (default `none`: koogallery-core forbids `unsafe`, and the time box is
#                        better spent on executions; `address` is a valid choice for a long run)
#
# New inputs go to fuzz/target/corpus/<target>/ (kept between runs, ignored by git); the committed seeds in
# fuzz/corpus/<target>/ are only read. A crashing input is written to fuzz/artifacts/<target>/ and the tail of the
# target's log (panic message and stack) is printed; reproduce it with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
# or by adding the file to fuzz/corpus/<target>/ and running `cargo test -p koogallery-core --test fuzz_seeds`.
set -euo pipefail

cd "$(dirname "$0")"
FUZZ_DIR=$PWD
# Always build into fuzz/target, whatever the caller exported: the binaries are run from there, and fuzz builds
# (nightly, sanitizer flags) must not churn another target directory.
export CARGO_TARGET_DIR=$FUZZ_DIR/target
SECONDS_PER_TARGET=${1:-25}
JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
SANITIZER=${FUZZ_SANITIZER:-none}
START=$(date +%s)

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi
cargo +nightly fuzz --version

step "build (sanitizer: $SANITIZER, debug assertions on)"
cargo +nightly fuzz build --sanitizer "$SANITIZER" --debug-assertions
TRIPLE=$(rustc +nightly -vV | sed -n 's/^host: //p')
BIN_DIR=$FUZZ_DIR/target/$TRIPLE/release
BUILT=$(date +%s)

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a TARGETS <<<"$FUZZ_TARGETS"
else
  mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi

LOG_DIR=$FUZZ_DIR/target/logs
mkdir -p "$LOG_DIR"

run_target() {
  local t=$1
  mkdir -p "$FUZZ_DIR/target/corpus/$t" "$FUZZ_DIR/artifacts/$t"
  local status=0
  "$BIN_DIR/$t" \
    -max_total_time="$SECONDS_PER_TARGET" \
    -timeout=10 \
    -rss_limit_mb=2048 \
    -print_final_stats=1 \
    -dict="$FUZZ_DIR/koogallery.dict" \
    -artifact_prefix="$FUZZ_DIR/artifacts/$t/" \
    "$FUZZ_DIR/target/corpus/$t" "$FUZZ_DIR/corpus/$t" \
    >"$LOG_DIR/$t.log" 2>&1 || status=$?
  echo "$status" >"$LOG_DIR/$t.status"
}

step "run ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET}s each, $JOBS at a time"
running=0
for t in "${TARGETS[@]}"; do
  rm -f "$LOG_DIR/$t.status"
  run_target "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

step "results"
failed=()
total_runs=0
printf '%-20s %12s %9s %7s %8s  %s\n' target executions exec/s cov corpus result
for t in "${TARGETS[@]}"; do
  log=$LOG_DIR/$t.log
  status=$(cat "$LOG_DIR/$t.status" 2>/dev/null || echo missing)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  corpus=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  result=ok
  if [ "$status" != 0 ]; then
    result="FAILED (exit $status)"
    failed+=("$t")
  fi
  total_runs=$((total_runs + ${runs:-0}))
  printf '%-20s %12s %9s %7s %8s  %s\n' "$t" "${runs:--}" "${rate:--}" "${cov:--}" "${corpus:--}" "$result"
done
END=$(date +%s)
printf '%-20s %12s\n' total "$total_runs"
echo "build $((BUILT - START))s, fuzzing $((END - BUILT))s, total $((END - START))s"

if [ "${#failed[@]}" -gt 0 ]; then
  for t in "${failed[@]}"; do
    step "$t failed: tail of $LOG_DIR/$t.log"
    tail -n 60 "$LOG_DIR/$t.log"
    ls -1 "$FUZZ_DIR/artifacts/$t/" 2>/dev/null | sed "s|^|artifact: fuzz/artifacts/$t/|"
  done
  exit 1
fi
