#!/usr/bin/env bash
# Demo: build pushpool and provision an ECS, a Cloud Run, an ACI and a Modal (images from ECR) push work
# pool, a hybrid ECS pool whose worker runs as an ECS service, and an ECS push pool on Prefect Cloud (the
# sandbox's Cloud-shaped front), against the local sandbox (moto as AWS, the GCP and Azure fakes, a real
# Prefect server, a fake docker and a fake modal client),
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

# Azure is the sandbox's Azure fake: a tenant and subscription of its own (made once: the demo's
# CLI directory remembers them), an Azure CLI directory whose active cloud is registered to point
# at the fake (as `az cloud register` would), and the fake `az` first on PATH for tokens.
export AZURE_CONFIG_DIR=$PUSHPOOL_SANDBOX_DIR/demo-azure
"$PUSHPOOL_SANDBOX_PYTHON" - "$PUSHPOOL_SANDBOX_AZURE_URL" "$AZURE_CONFIG_DIR" <<'PY'
import json, os, sys, urllib.request
url, cli = sys.argv[1:]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def admin(method, path, body=None):
    request = urllib.request.Request(url + path, json.dumps(body or {}).encode(), {"Content-Type": "application/json"}, method=method)
    return json.load(opener.open(request))
os.makedirs(cli, exist_ok=True)
profile_path = os.path.join(cli, "azureProfile.json")
known = None
if os.path.exists(profile_path):  # the fake keeps its state while it runs: reuse the demo's subscription
    known = json.loads(open(profile_path, encoding="utf-8-sig").read())["subscriptions"][0]
    try:
        admin("GET", f"/admin/subscriptions/{known['id']}/state")
    except Exception:
        known = None  # the sandbox was restarted: make new ones
if known is None:
    tenant = admin("POST", "/admin/tenants")["tenantId"]
    subscription = admin("POST", "/admin/subscriptions", {"displayName": "demo", "tenantId": tenant})["subscriptionId"]
    known = {"id": subscription, "name": "demo", "tenantId": tenant, "isDefault": True, "state": "Enabled",
             "environmentName": "PushpoolFake", "user": {"name": "demo@example.com", "type": "user"}}
with open(profile_path, "w", encoding="utf-8-sig") as f:  # the CLI writes it with a BOM
    json.dump({"subscriptions": [known]}, f)
open(os.path.join(cli, "config"), "w").write("[cloud]\nname = PushpoolFake\n")
open(os.path.join(cli, "clouds.config"), "w").write(
    f"[PushpoolFake]\nendpoint_resource_manager = {url}/arm/\nendpoint_active_directory_resource_id = {url}/arm/\n"
    f"endpoint_microsoft_graph_resource_id = {url}/graph/\nendpoint_active_directory = {url}/login\n"
    "suffix_acr_login_server_endpoint = .azurecr.io\n")
PY
export PUSHPOOL_AZURE_ACR_EXCHANGE_URL="$PUSHPOOL_SANDBOX_AZURE_URL/acr/{registry}/oauth2/exchange"
export FAKE_AZ_LOG=$PUSHPOOL_SANDBOX_DIR/demo-az.log
unset AZURE_SUBSCRIPTION_ID AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_FEDERATED_TOKEN_FILE
export PATH=$PWD/tests/sandbox/az-bin:$PATH

# Modal is a fake `modal` client keeping its Secrets in the sandbox, a demo token, and the
# modal-credentials block type registered the way Prefect Cloud has it (an open-source server has
# none), as is the pool's template (--base-job-template).
export MODAL_TOKEN_ID=ak-demo MODAL_TOKEN_SECRET=as-demo-not-a-real-secret FAKE_MODAL_STATE=$PUSHPOOL_SANDBOX_DIR/demo-modal
# The fake modal stands for Modal's servers: its Secrets live as long as the sandbox's other
# servers, which start empty with it. Kept across a sandbox restart, they would hold keys of IAM
# users moto no longer has, and the re-run would rightly refuse a Secret it did not write.
moto_pid=$(cat "$PUSHPOOL_SANDBOX_DIR/moto.pid")
if [[ $(cat "$FAKE_MODAL_STATE/.sandbox-moto-pid" 2>/dev/null) != "$moto_pid" ]]; then
  rm -rf "$FAKE_MODAL_STATE"
  mkdir -p "$FAKE_MODAL_STATE"
  echo "$moto_pid" >"$FAKE_MODAL_STATE/.sandbox-moto-pid"
fi
unset MODAL_PROFILE MODAL_ENVIRONMENT MODAL_CONFIG_PATH
export PATH=$PWD/tests/sandbox/modal-bin:$PATH
"$PUSHPOOL_SANDBOX_PYTHON" - "$PUSHPOOL_SANDBOX_PREFECT_URL" tests/fixtures/prefect-cloud/modal-credentials.block-type.json <<'PY'
import json, sys, urllib.error, urllib.request
url, fixture = sys.argv[1], json.load(open(sys.argv[2]))
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def call(method, path, body=None):
    request = urllib.request.Request(url + path, json.dumps(body).encode() if body else None, {"Content-Type": "application/json"}, method=method)
    try:
        return json.load(opener.open(request))
    except urllib.error.HTTPError as e:
        if e.code != 409:  # registered by an earlier demo
            raise
call("POST", "/block_types/", fixture["block_type"])
block_type = call("GET", f"/block_types/slug/{fixture['block_type']['slug']}")
call("POST", "/block_schemas/", {**fixture["block_schema"], "block_type_id": block_type["id"]})
PY
MODAL_TEMPLATE=tests/fixtures/prefect-cloud/modal-push.base-job-template.json

# Prefect Cloud, where push pools run, is the sandbox's Cloud-shaped front (tests/sandbox/cloud_front.py)
# before the same server: a workspace of its own, and a profile `cloud` as `prefect cloud login` leaves
# one (the workspace's URL, an API key, PREFECT_CLOUD_API_URL). The key stays in the profile file.
"$PUSHPOOL_SANDBOX_PYTHON" - "$PUSHPOOL_SANDBOX_CLOUD_URL" >>"$PREFECT_HOME/profiles.toml" <<'PY'
import json, sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
request = urllib.request.Request(sys.argv[1] + "/_sandbox/workspaces", b"{}", {"Content-Type": "application/json"})
workspace = json.load(opener.open(request))
print(f'\n[profiles.cloud]\nPREFECT_API_URL = "{workspace["api_url"]}"\nPREFECT_API_KEY = "{workspace["keys"]["user"]}"')
print(f'PREFECT_CLOUD_API_URL = "{workspace["cloud_api_url"]}"')
PY

set -x
target/debug/pushpool work-pool create demo-ecs --type ecs:push --provision-infra --yes
target/debug/pushpool work-pool create demo-ecs --type ecs:push --provision-infra --yes --dry-run
target/debug/pushpool work-pool create demo-cloud-run --type cloud-run-v2:push --provision-infra --yes --project "$GCP_PROJECT" --region us-central1
target/debug/pushpool work-pool create demo-cloud-run --type cloud-run-v2:push --provision-infra --yes --project "$GCP_PROJECT" --region us-central1 --dry-run
target/debug/pushpool work-pool create demo-aci --type azure-container-instance:push --provision-infra --yes
target/debug/pushpool work-pool create demo-aci --type azure-container-instance:push --provision-infra --yes --dry-run
target/debug/pushpool work-pool create demo-modal --type modal:push --provision-infra --image-registry ecr --base-job-template "$MODAL_TEMPLATE" --yes
target/debug/pushpool work-pool provision-infra demo-modal --dry-run
target/debug/pushpool work-pool create demo-worker --type ecs --provision-infra --worker --yes
target/debug/pushpool work-pool provision-infra demo-worker --dry-run
PREFECT_PROFILE=cloud target/debug/pushpool work-pool create demo-cloud-ecs --type ecs:push --provision-infra --yes
PREFECT_PROFILE=cloud target/debug/pushpool work-pool provision-infra demo-cloud-ecs --dry-run
{ set +x; } 2>/dev/null

cat <<EOF

Done. Look around:
  Prefect UI:   ${PUSHPOOL_SANDBOX_PREFECT_URL%/api}  (Work Pools -> demo-ecs, demo-cloud-run, demo-aci, demo-modal, demo-worker, demo-cloud-ecs)
  Pool names:   demo-ecs, demo-cloud-run, demo-aci, demo-modal, demo-worker, demo-cloud-ecs (on the Cloud-shaped
                front: PREFECT_PROFILE=cloud in $PREFECT_HOME)
  Modal (fake): $FAKE_MODAL_STATE/secrets.json
  AWS (moto):   $PUSHPOOL_SANDBOX_MOTO_URL/moto-api/
  GCP (fake):   $PUSHPOOL_SANDBOX_GCP_URL/admin/projects/$GCP_PROJECT/state
  docker calls: $FAKE_DOCKER_LOG
Stop the sandbox with: scripts/sandbox.sh down
EOF
