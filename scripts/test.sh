#!/usr/bin/env bash
# The whole test suite: fmt, the debug build, the release checks (the wheel, workflows, the crate's file
# list), then start the sandbox (moto, the Prefect server and its Cloud-shaped front, the GCP and Azure
# fakes, the counting proxy), run `cargo test` against it with clippy beside it, stop the sandbox. Extra arguments go to the test harness (after cargo's `--`), e.g.
# scripts/test.sh aws_ --nocapture
# PUSHPOOL_KEEP_SANDBOX=1 leaves the sandbox running afterwards (faster reruns, post-mortems).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Phase timings, printed at the end: "sandbox up 20 s, cargo test 300 s, sandbox down 2 s, total 322 s".
started=$SECONDS phase_start=$SECONDS current="" timings=()
phase() { # phase NAME: close the running phase (record its duration), announce the next
  [[ -z $current ]] || timings+=("$current $((SECONDS - phase_start)) s")
  current=$1 phase_start=$SECONDS
  [[ -z $current ]] || echo "test.sh: $current..."
}

# The AWS SDK crates need Rust 1.94.1 or newer; say so plainly instead of failing deep in a build.
need=1.94.1
have=$(rustc --version 2>/dev/null | awk '{print $2}') || true
[[ -n $have ]] || { echo "test.sh: rustc not found; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
if [[ $(printf '%s\n%s\n' "$need" "${have%%-*}" | sort -V | head -n1) != "$need" ]]; then
  echo "test.sh: rustc $have is too old: the AWS SDK needs $need or newer. Run: rustup update" >&2
  exit 1
fi

# Stop the sandbox however we leave (test failure, Ctrl-C), keeping the test run's exit status.
finish() {
  local rc=$?
  if [[ -n ${clippy_pid:-} ]] && kill -0 "$clippy_pid" 2>/dev/null; then # stopped early: clippy too
    pkill -P "$clippy_pid" 2>/dev/null || true
    kill "$clippy_pid" 2>/dev/null || true
  fi
  if [[ ${PUSHPOOL_KEEP_SANDBOX:-0} == 1 ]]; then
    echo "test.sh: sandbox left running (PUSHPOOL_KEEP_SANDBOX=1); stop it with scripts/sandbox.sh down"
  else
    phase "sandbox down"
    scripts/sandbox.sh down || true
  fi
  phase ""
  local summary
  summary=$(printf '%s, ' "${timings[@]}")
  echo "test.sh: exit status $rc; ${summary}total $((SECONDS - started)) s"
  # Last, alone on its line: every test binary's results added up.
  [[ -z ${totals:-} ]] || echo "${totals% *} passed, ${totals#* } failed"
  exit "$rc"
}
trap finish EXIT

# The static checks first, cheapest first, so that a mistake fails in seconds (scripts/checks.sh).
phase "fmt"
scripts/checks.sh fmt
# The debug build the tests use, test binaries included; the wheel is made from it.
phase "build"
cargo build --locked
cargo test --locked --no-run
phase "release checks"
scripts/checks.sh release

# clippy checks the dependencies in a compile of its own that shares nothing with the build above
# (about 7 minutes from a fresh clone): it runs beside the tests, which mostly wait on the sandbox,
# in a target directory of its own so that neither waits for the other's lock. Its verdict comes
# after the tests'; a clippy failure fails the run all the same.
clippy_log=$(mktemp)
CARGO_TARGET_DIR="$PWD/target/clippy" scripts/checks.sh clippy >"$clippy_log" 2>&1 &
clippy_pid=$!

phase "sandbox up"
scripts/sandbox.sh up
sandbox_env=$(scripts/sandbox.sh env) # assigned first so a failure stops us (set -e)
eval "$sandbox_env"

phase "cargo test"
# The output is kept so that the last line can total every test binary's result.
log=$(mktemp)
status=0
cargo test --locked -- "$@" 2>&1 | tee "$log" || status=$?
totals=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$log")
rm -f "$log"

phase "clippy (beside the tests)"
if ! wait "$clippy_pid"; then
  cat "$clippy_log" >&2
  status=1
fi
rm -f "$clippy_log"
exit "$status"
