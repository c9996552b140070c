#!/usr/bin/env bash
# The local test sandbox: moto (fake AWS), a real Prefect server, the GCP fake (tests/sandbox/gcp_fake.py),
# the Azure fake (tests/sandbox/azure_fake.py), the counting proxy (tests/sandbox/proxy.py) and a Prefect-Cloud-shaped
# front for the Prefect server (tests/sandbox/cloud_front.py), all bound to 127.0.0.1.
# Usage: scripts/sandbox.sh up|down|env|status
#
#   up      install the Python packages once (cached venv), start the six servers, write <state>/env
#   down    stop them (idempotent)
#   env     print the export lines tests source: eval "$(scripts/sandbox.sh env)"
#   status  health of each server
#
# Overrides: PUSHPOOL_SANDBOX_CACHE (venv cache), PUSHPOOL_SANDBOX_DIR (state: pids, logs, env),
# PUSHPOOL_MOTO_PORT, PUSHPOOL_PREFECT_PORT, PUSHPOOL_PROXY_PORT, PUSHPOOL_GCP_PORT, PUSHPOOL_AZURE_PORT, PUSHPOOL_CLOUD_PORT;
# PUSHPOOL_GCP_DISCOVERY_DIR (the GCP fake's discovery documents; default ../shared/specs/gcp, else the
# google-api-python-client wheel's); PUSHPOOL_AZURE_SPECS_DIR (the Azure fake's examples and Graph schema;
# default ../shared/specs/azure, else the copy in tests/sandbox/specs/azure).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$ROOT/tests/sandbox/requirements.lock"
CACHE="${PUSHPOOL_SANDBOX_CACHE:-$HOME/.cache/pushpool}"
STATE="${PUSHPOOL_SANDBOX_DIR:-$ROOT/.sandbox}"
MOTO_PORT="${PUSHPOOL_MOTO_PORT:-15000}"
PREFECT_PORT="${PUSHPOOL_PREFECT_PORT:-14200}"
PROXY_PORT="${PUSHPOOL_PROXY_PORT:-15100}"
GCP_PORT="${PUSHPOOL_GCP_PORT:-15300}"
AZURE_PORT="${PUSHPOOL_AZURE_PORT:-15400}"
CLOUD_PORT="${PUSHPOOL_CLOUD_PORT:-15500}"
# The venv is keyed by the lock file's hash: changing a pin builds a new one, never mutates an old one.
VENV="$CACHE/venv-$(sha256sum "$LOCK" | cut -c1-12)"
PY="$VENV/bin/python"
SERVICES=(moto prefect proxy gcp azure cloud)

# Nothing the servers run may leave this machine: send any outbound HTTP(S) to a dead local port.
OFFLINE=(HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
  https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1,localhost
  DO_NOT_TRACK=1)

die() { echo "sandbox: $*" >&2; exit 1; }

url_of() { # the health URL of a service, and the text its body must contain
  case $1 in
    moto) echo "http://127.0.0.1:$MOTO_PORT/moto-api/ moto" ;;
    prefect) echo "http://127.0.0.1:$PREFECT_PORT/api/health true" ;;
    proxy) echo "http://127.0.0.1:$PROXY_PORT/health ok" ;;
    gcp) echo "http://127.0.0.1:$GCP_PORT/health ok" ;;
    azure) echo "http://127.0.0.1:$AZURE_PORT/health ok" ;;
    cloud) echo "http://127.0.0.1:$CLOUD_PORT/health ok" ;;
  esac
}

# probe URL TEXT [TIMEOUT [PID]]: succeed once GET URL answers with TEXT in its body. Gives up early
# if PID has exited. Python rather than curl so that no proxy variable of the caller can interfere.
probe() {
  "$PY" - "$@" <<'EOF'
import os, sys, time, urllib.request
url, text = sys.argv[1], sys.argv[2]
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 0
pid = sys.argv[4] if len(sys.argv) > 4 else None
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def alive(pid):  # a zombie (state Z) has exited
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
deadline = time.time() + timeout
while True:
    try:
        if text in opener.open(url, timeout=2).read().decode(errors="replace"):
            sys.exit(0)
    except Exception:
        pass
    if time.time() >= deadline or (pid and not alive(pid)):
        sys.exit(1)
    time.sleep(0.3)
EOF
}

ensure_venv() {
  [[ -x $PY ]] || command -v python3 >/dev/null || die "python3 (3.10 or newer) is required"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/install.lock" && flock 9 # two runs at once must not install into the same venv
  # The stamp is written last, so an interrupted install is thrown away and redone.
  if [[ ! -f $VENV/.installed ]]; then
    echo "sandbox: installing Python packages into $VENV (about a minute the first time)..."
    local t0=$SECONDS
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$LOCK"
    touch "$VENV/.installed"
    echo "sandbox: packages installed in $((SECONDS - t0)) s"
  fi
  exec 9>&-
}

running() { # the process is alive (a zombie left to an init that does not reap counts as dead)
  local stat
  [[ -f $STATE/$1.pid ]] && stat=$(ps -o stat= -p "$(cat "$STATE/$1.pid")") && [[ $stat != Z* ]]
}

healthy() { running "$1" && probe $(url_of "$1"); }

# start NAME CMD...: run CMD in its own session (so `down` can kill it with all its children),
# detached from our terminal, logging into the state dir.
start() {
  local name=$1; shift
  setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid" # setsid does not fork here (a background job never leads a group)
}

wait_healthy() {
  local name=$1 url text
  read -r url text <<<"$(url_of "$name")"
  if ! probe "$url" "$text" 90 "$(cat "$STATE/$name.pid")"; then
    echo "sandbox: $name did not become healthy at $url (exited, or not within 90 s). Last lines of $STATE/$name.log:" >&2
    tail -n 40 "$STATE/$name.log" >&2 || true
    stop_all
    exit 1
  fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

members() { # every live process in our services' sessions, children (e.g. uvicorn workers) included
  local s
  for s in "${SERVICES[@]}"; do
    [[ -f $STATE/$s.pid ]] && ps -o pid=,stat= --sid "$(cat "$STATE/$s.pid")" | awk '$2 !~ /^Z/ {print $1}'
  done
  return 0
}

stop_all() { # SIGTERM everything, give it 10 s to exit cleanly, then SIGKILL what is left
  local i s
  kill -TERM $(members) 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do [[ -n $(members) ]] || break; sleep 0.1; done
  kill -KILL $(members) 2>/dev/null || true
  for s in "${SERVICES[@]}"; do rm -f "$STATE/$s.pid"; done
  rm -f "$STATE/env"
}

write_env() {
  cat >"$STATE/env" <<EOF
export PUSHPOOL_SANDBOX_DIR=$STATE
export PUSHPOOL_SANDBOX_PYTHON=$PY
export PUSHPOOL_SANDBOX_MOTO_URL=http://127.0.0.1:$MOTO_PORT
export PUSHPOOL_SANDBOX_PREFECT_URL=http://127.0.0.1:$PREFECT_PORT/api
export PUSHPOOL_SANDBOX_PROXY_URL=http://127.0.0.1:$PROXY_PORT
export PUSHPOOL_SANDBOX_GCP_URL=http://127.0.0.1:$GCP_PORT
export PUSHPOOL_SANDBOX_AZURE_URL=http://127.0.0.1:$AZURE_PORT
export PUSHPOOL_SANDBOX_CLOUD_URL=http://127.0.0.1:$CLOUD_PORT
export PUSHPOOL_SANDBOX_FAKE_BIN=$ROOT/tests/sandbox/bin
EOF
}

up() {
  ensure_venv
  mkdir -p "$STATE"
  if healthy moto && healthy prefect && healthy proxy && healthy gcp && healthy azure && healthy cloud; then
    echo "sandbox: already up and healthy, reusing it (scripts/sandbox.sh down to stop it)"
    write_env
    return
  fi
  stop_all # leftovers of a half-started or crashed sandbox
  for port in "$MOTO_PORT" "$PREFECT_PORT" "$PROXY_PORT" "$GCP_PORT" "$AZURE_PORT" "$CLOUD_PORT"; do
    port_free "$port" || die "port $port on 127.0.0.1 is taken by another program; stop it or set PUSHPOOL_{MOTO,PREFECT,PROXY,GCP,AZURE,CLOUD}_PORT"
  done

  # moto loads the AWS managed policies only when asked: the execution role attaches one.
  start moto env "${OFFLINE[@]}" MOTO_IAM_LOAD_MANAGED_POLICIES=true \
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"

  # Prefect starts from an empty PREFECT_HOME (fresh sqlite db) every time, without the caller's
  # profile, and is told not to phone home: no telemetry heartbeat (ANALYTICS_ENABLED), no SDK
  # analytics (DO_NOT_TRACK), no promotional content. The one other outbound call it makes (the
  # collection registry on GitHub) hits the dead proxy and falls back to the copy bundled in prefect.
  rm -rf "$STATE/prefect-home"
  mkdir -p "$STATE/prefect-home"
  start prefect env -u PREFECT_API_URL -u PREFECT_API_KEY -u PREFECT_PROFILE "${OFFLINE[@]}" \
    PREFECT_HOME="$STATE/prefect-home" \
    PREFECT_SERVER_DATABASE_CONNECTION_URL="sqlite+aiosqlite:///$STATE/prefect-home/prefect.db" \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT=false \
    "$VENV/bin/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT"

  start proxy env "${OFFLINE[@]}" "$PY" "$ROOT/tests/sandbox/proxy.py" "$PROXY_PORT"

  # The GCP fake: state in memory, fresh on every start; its log never holds a request or response body.
  start gcp env "${OFFLINE[@]}" "$PY" "$ROOT/tests/sandbox/gcp_fake.py" "$GCP_PORT"

  # The Azure fake: the same (ARM, Graph, the token endpoint and ACR's token exchange on one port).
  start azure env "${OFFLINE[@]}" "$PY" "$ROOT/tests/sandbox/azure_fake.py" "$AZURE_PORT"

  # The Prefect-Cloud-shaped front: workspace URLs, API keys, Cloud's work pool types and rate limits,
  # in front of the Prefect server above (what it models and what not: its header).
  start cloud env "${OFFLINE[@]}" "$PY" "$ROOT/tests/sandbox/cloud_front.py" "$CLOUD_PORT" \
    "http://127.0.0.1:$PREFECT_PORT/api" "$ROOT/tests/fixtures/prefect-cloud"

  for s in "${SERVICES[@]}"; do wait_healthy "$s"; done
  write_env
  echo "sandbox: up (moto :$MOTO_PORT, prefect :$PREFECT_PORT, proxy :$PROXY_PORT, gcp :$GCP_PORT, azure :$AZURE_PORT, cloud :$CLOUD_PORT); env in $STATE/env"
}

status() {
  local s all=0
  for s in "${SERVICES[@]}"; do
    if healthy "$s"; then echo "$s: healthy (pid $(cat "$STATE/$s.pid")) $(url_of "$s" | cut -d' ' -f1)"
    elif running "$s"; then echo "$s: running but not healthy (log: $STATE/$s.log)"; all=1
    else echo "$s: down"; all=1; fi
  done
  return $all
}

case ${1:-} in
  up) up ;;
  down) stop_all; echo "sandbox: down" ;;
  env) [[ -f $STATE/env ]] || die "not up (run scripts/sandbox.sh up)"; cat "$STATE/env" ;;
  status) [[ -x $PY ]] || die "not installed (run scripts/sandbox.sh up)"; status ;;
  *) die "usage: scripts/sandbox.sh up|down|env|status" ;;
esac
