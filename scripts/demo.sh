#!/usr/bin/env bash
# Demo: build pushpool and provision an ECS push work pool and a Cloud Run push work pool against the
# local sandbox (moto as AWS, the GCP fake as Google Cloud, a real Prefect server, a fake docker),
# then show the same commands as dry runs. Nothing leaves this machine. The sandbox keeps running
# afterwards so you can look around.
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

# Google Cloud is the sandbox's GCP fake: a project of its own, a service account key file it
# issued as Application Default Credentials, gcloud's endpoint overrides pointing at it, an empty
# gcloud configuration, Docker's configuration in the sandbox (never the user's ~/.docker), and a
# dead metadata server.
GCP_PROJECT=demo-cloud-run
export GOOGLE_APPLICATION_CREDENTIALS=$PUSHPOOL_SANDBOX_DIR/demo-gcp-adc.json
"$PUSHPOOL_SANDBOX_PYTHON" - "$PUSHPOOL_SANDBOX_GCP_URL" "$GCP_PROJECT" "$GOOGLE_APPLICATION_CREDENTIALS" <<'PY'
import json, os, sys, urllib.error, urllib.request
url, project, adc = sys.argv[1:]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def post(path, body):
    request = urllib.request.Request(url + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        return json.load(opener.open(request))
    except urllib.error.HTTPError as e:
        if e.code != 409:  # 409: the project exists from an earlier demo
            raise
post("/admin/projects", {"projectId": project})
with os.fdopen(os.open(adc, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
    json.dump(post("/admin/credentials", {"projectId": project}), f)
PY
for api in iam cloudresourcemanager serviceusage artifactregistry; do
  export "CLOUDSDK_API_ENDPOINT_OVERRIDES_${api^^}=$PUSHPOOL_SANDBOX_GCP_URL/$api/"
done
export CLOUDSDK_CONFIG=$PUSHPOOL_SANDBOX_DIR/demo-gcloud DOCKER_CONFIG=$PUSHPOOL_SANDBOX_DIR/demo-docker-config
export GCE_METADATA_HOST=127.0.0.1:9
unset CLOUDSDK_CORE_PROJECT GOOGLE_CLOUD_PROJECT CLOUDSDK_RUN_REGION CLOUDSDK_ACTIVE_CONFIG_NAME
mkdir -p "$CLOUDSDK_CONFIG"

set -x
target/debug/pushpool work-pool create demo-ecs --type ecs:push --provision-infra --yes
target/debug/pushpool work-pool create demo-ecs --type ecs:push --provision-infra --yes --dry-run
target/debug/pushpool work-pool create demo-cloud-run --type cloud-run-v2:push --provision-infra --yes --project "$GCP_PROJECT" --region us-central1
target/debug/pushpool work-pool create demo-cloud-run --type cloud-run-v2:push --provision-infra --yes --project "$GCP_PROJECT" --region us-central1 --dry-run
{ set +x; } 2>/dev/null

cat <<EOF

Done. Look around:
  Prefect UI:   ${PUSHPOOL_SANDBOX_PREFECT_URL%/api}  (Work Pools -> demo-ecs, demo-cloud-run)
  Pool names:   demo-ecs, demo-cloud-run
  AWS (moto):   $PUSHPOOL_SANDBOX_MOTO_URL/moto-api/
  GCP (fake):   $PUSHPOOL_SANDBOX_GCP_URL/admin/projects/$GCP_PROJECT/state
  docker calls: $FAKE_DOCKER_LOG
Stop the sandbox with: scripts/sandbox.sh down
EOF
