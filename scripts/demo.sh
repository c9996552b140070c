#!/usr/bin/env bash
# Demo: build pushpool and provision an ECS push work pool against the local sandbox (moto as AWS,
# a real Prefect server, a fake docker), then show the same command as a dry run. Nothing leaves
# this machine. The sandbox keeps running afterwards so you can look around.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --locked
scripts/sandbox.sh up
sandbox_env=$(scripts/sandbox.sh env) # assigned first so a failure stops us (set -e)
eval "$sandbox_env"

# A Prefect profile of its own, pointing at the sandbox server (the user's ~/.prefect is untouched).
export PREFECT_HOME=$PUSHPOOL_SANDBOX_DIR/demo-prefect-home
mkdir -p "$PREFECT_HOME"
cat >"$PREFECT_HOME/profiles.toml" <<EOF
active = "sandbox"

[profiles.sandbox]
PREFECT_API_URL = "$PUSHPOOL_SANDBOX_PREFECT_URL"
EOF
unset PREFECT_API_URL PREFECT_API_KEY PREFECT_PROFILE # so the profile above is what is used

# AWS is moto: fake keys, and no config, credentials file or instance metadata of the real machine.
export AWS_ENDPOINT_URL=$PUSHPOOL_SANDBOX_MOTO_URL
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_CONFIG_FILE=$PUSHPOOL_SANDBOX_DIR/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$PUSHPOOL_SANDBOX_DIR/no-aws-credentials
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE

# The fake docker records the registry login instead of reaching a (real) AWS registry host.
export PATH=$PUSHPOOL_SANDBOX_FAKE_BIN:$PATH
export FAKE_DOCKER_LOG=$PUSHPOOL_SANDBOX_DIR/demo-docker.log

set -x
target/debug/pushpool work-pool create demo-ecs --type ecs:push --provision-infra --yes
target/debug/pushpool work-pool create demo-ecs --type ecs:push --provision-infra --yes --dry-run
{ set +x; } 2>/dev/null

cat <<EOF

Done. Look around:
  Prefect UI:   ${PUSHPOOL_SANDBOX_PREFECT_URL%/api}  (Work Pools -> demo-ecs)
  Pool name:    demo-ecs
  AWS (moto):   $PUSHPOOL_SANDBOX_MOTO_URL/moto-api/
  docker calls: $FAKE_DOCKER_LOG
Stop the sandbox with: scripts/sandbox.sh down
EOF
