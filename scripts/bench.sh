#!/usr/bin/env bash
# The benchmark of issue 5: pushpool against `prefect work-pool provision-infra`, on a sandbox of
# its own (moto, a Prefect server and the counting proxy, all on 127.0.0.1), with 0 and 50 ms
# added to every API call. Writes bench/results/<date-time>/{report.md,times.png,results.json}.
#
#   scripts/bench.sh [--runs N] [--latency 0,50] [--scenarios fresh,rerun,plan]
#                    [--pushpool PATH] [--out DIR]
#   scripts/bench.sh --scenarios fleet [--pools 100] [--accounts 10] [--regions us-east-1,us-west-2]
#                    [--latency 0,50] [--parallelism N] [--fail-one] [--pushpool PATH] [--out DIR]
#
# `fleet` (issue 23, bench/fleet.py) plans, applies and re-applies a pools file of many pools
# over several AWS accounts (profiles with role_arn) and regions; it runs alone. --fail-one adds
# an apply with one pool's write refused (it must fail alone) and its resumption.
#
# Without --pushpool it builds the release binary into $PUSHPOOL_BENCH_TARGET (default
# /tmp/pushpool-bench-target, apart from target/ so that it never waits on another cargo).
# The sandbox runs on its own ports and state dir, so that the tests' sandbox is left alone:
# PUSHPOOL_BENCH_MOTO_PORT (16000), PUSHPOOL_BENCH_PREFECT_PORT (16200),
# PUSHPOOL_BENCH_PROXY_PORT (16100), PUSHPOOL_BENCH_GCP_PORT (16300), PUSHPOOL_BENCH_AZURE_PORT (16400),
# PUSHPOOL_BENCH_CLOUD_PORT (16500), PUSHPOOL_BENCH_SANDBOX_DIR (/tmp/pushpool-bench-sandbox).
# It is stopped at the end, whatever happens.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${PUSHPOOL_SANDBOX_CACHE:-$HOME/.cache/pushpool}"

pushpool=""
scenarios=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --pushpool) pushpool=${args[i + 1]:-} ;;
    --pushpool=*) pushpool=${args[i]#--pushpool=} ;;
    --scenarios) scenarios=${args[i + 1]:-} ;;
    --scenarios=*) scenarios=${args[i]#--scenarios=} ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  esac
done

# Machine load skews every number: say so when a compiler is running here (2 cores).
if pgrep -x rustc >/dev/null; then
  echo "bench: note: rustc is running on this machine; timings will be noisy" >&2
fi

if [[ -z $pushpool ]]; then
  target="${PUSHPOOL_BENCH_TARGET:-/tmp/pushpool-bench-target}"
  echo "bench: building pushpool (release) into $target..."
  CARGO_TARGET_DIR="$target" cargo build --release --locked --quiet
  pushpool="$target/release/pushpool"
  args+=(--pushpool "$pushpool")
fi
[[ -x $pushpool ]] || { echo "bench: $pushpool is not an executable" >&2; exit 1; }

export PUSHPOOL_MOTO_PORT="${PUSHPOOL_BENCH_MOTO_PORT:-16000}"
export PUSHPOOL_PREFECT_PORT="${PUSHPOOL_BENCH_PREFECT_PORT:-16200}"
export PUSHPOOL_PROXY_PORT="${PUSHPOOL_BENCH_PROXY_PORT:-16100}"
export PUSHPOOL_GCP_PORT="${PUSHPOOL_BENCH_GCP_PORT:-16300}"
export PUSHPOOL_AZURE_PORT="${PUSHPOOL_BENCH_AZURE_PORT:-16400}"
export PUSHPOOL_CLOUD_PORT="${PUSHPOOL_BENCH_CLOUD_PORT:-16500}"
export PUSHPOOL_SANDBOX_DIR="${PUSHPOOL_BENCH_SANDBOX_DIR:-/tmp/pushpool-bench-sandbox}"
trap 'scripts/sandbox.sh down >/dev/null' EXIT
scripts/sandbox.sh up
sandbox_env=$(scripts/sandbox.sh env) # assigned first so that a failure stops us (set -e)
eval "$sandbox_env"

if [[ $scenarios == fleet ]]; then
  # The fleet harness plots nothing: no matplotlib needed.
  "$PUSHPOOL_SANDBOX_PYTHON" "$ROOT/bench/fleet.py" "${args[@]}"
  exit
fi

# matplotlib in a venv of its own, keyed by the requirements' hash like the sandbox's.
REQS="$ROOT/bench/requirements.txt"
PLOT_VENV="$CACHE/bench-venv-$(sha256sum "$REQS" | cut -c1-12)"
mkdir -p "$CACHE"
(
  flock 9
  if [[ ! -f $PLOT_VENV/.installed ]]; then
    echo "bench: installing matplotlib into $PLOT_VENV..."
    rm -rf "$PLOT_VENV"
    python3 -m venv "$PLOT_VENV"
    "$PLOT_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQS"
    touch "$PLOT_VENV/.installed"
  fi
) 9>"$CACHE/bench-install.lock"

# The harness runs under the sandbox's Python: boto3 and prefect-aws are there.
"$PUSHPOOL_SANDBOX_PYTHON" "$ROOT/bench/bench.py" --plot-python "$PLOT_VENV/bin/python" "${args[@]}"
