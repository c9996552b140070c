//! The GCP fake itself (tests/sandbox/gcp_fake.py), driven directly over HTTP: it answers with
//! Google's documented semantics and enforces the discovery documents' contract. These tests
//! prove the fake that pushpool's Cloud Run tests rely on, not the live cloud.
//!
//! Run: `scripts/sandbox.sh up && eval "$(scripts/sandbox.sh env)" && cargo test --test gcp_fake`

mod support;

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};
use support::gcp::{ARTIFACT_REGISTRY, GcpFake, GcpProject, GcpWorld, RUN, base64_decode, fake_gcloud_dir};
use support::{Channel, Sandbox, World, http};

/// One Google API call to the fake (or to `base`, a proxy channel in front of it).
async fn call_at(base: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = http().request(method, format!("{base}/{path}")).bearer_auth("test-token");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn call(method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    call_at(&GcpFake::get().url, method, path, body).await
}

async fn get(path: &str) -> (u16, Value) {
    call(Method::GET, path, None).await
}

async fn post(path: &str, body: Value) -> (u16, Value) {
    call(Method::POST, path, Some(body)).await
}

fn status_of(body: &Value) -> &str {
    body["error"]["status"].as_str().unwrap_or_default()
}

async fn create_account(project: &GcpProject, account_id: &str) -> (u16, Value) {
    let body = json!({"accountId": account_id, "serviceAccount": {"displayName": "Prefect Cloud Run", "description": "made by a test"}});
    post(&format!("iam/v1/projects/{}/serviceAccounts", project.id), body).await
}

async fn poll_until_done(service: &str, name: &str) -> (usize, Value) {
    for polls in 1..=10 {
        let (status, op) = get(&format!("{service}/v1/{name}")).await;
        assert_eq!(status, 200, "{op}");
        if op["done"] == true {
            return (polls, op);
        }
    }
    panic!("operation {name} not done after 10 polls")
}

#[test]
fn fake_contract_checker_unit_tests_pass() {
    let sandbox = Sandbox::get();
    let output = Command::new(&sandbox.python)
        .args(["-m", "unittest", "discover", "-s", "tests/sandbox", "-p", "test_gcp_fake.py"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("DO_NOT_TRACK", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[tokio::test]
async fn fake_answers_duplicate_service_account_with_409_already_exists() {
    let fake = GcpFake::get();
    let project = fake.project("dup").await;
    let (status, account) = create_account(&project, "prefect-cloud-run").await;
    assert_eq!(status, 200, "{account}");
    let email = project.email("prefect-cloud-run");
    assert_eq!(account["email"], email.as_str());
    assert_eq!(account["name"], format!("projects/{}/serviceAccounts/{email}", project.id));
    assert_eq!(account["projectId"], project.id.as_str());
    let unique_id = account["uniqueId"].as_str().unwrap();
    assert!(unique_id.len() == 21 && unique_id.bytes().all(|b| b.is_ascii_digit()), "{unique_id}");
    assert_eq!(account["oauth2ClientId"], unique_id);
    assert!(account["etag"].is_string());

    let (status, error) = create_account(&project, "prefect-cloud-run").await;
    assert_eq!((status, status_of(&error)), (409, "ALREADY_EXISTS"), "{error}");
    assert_eq!(error["error"]["code"], 409);
    assert!(error["error"]["message"].as_str().unwrap().contains("already exists"));
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_rejects_an_invalid_account_id_with_400() {
    let project = GcpFake::get().project("badid").await;
    for bad in ["short", "Prefect-cloud-run", "1prefect", "prefect-", "a-very-long-account-id-beyond-30"] {
        let (status, error) = create_account(&project, bad).await;
        assert_eq!((status, status_of(&error)), (400, "INVALID_ARGUMENT"), "{bad}: {error}");
    }
}

#[tokio::test]
async fn fake_answers_403_for_a_missing_project_and_404_for_a_missing_resource() {
    let fake = GcpFake::get();
    let project = fake.project_with("nf", &[ARTIFACT_REGISTRY]).await;
    let missing = "missing-project-000";
    for path in [
        format!("cloudresourcemanager/v3/projects/{missing}"),
        format!("iam/v1/projects/{missing}/serviceAccounts/x-account@{missing}.iam.gserviceaccount.com"),
        format!("artifactregistry/v1/projects/{missing}/locations/us-central1/repositories/prefect-images"),
    ] {
        let (status, error) = get(&path).await;
        assert_eq!((status, status_of(&error)), (403, "PERMISSION_DENIED"), "{path}: {error}");
    }
    for path in [
        format!("iam/v1/projects/{}/serviceAccounts/{}", project.id, project.email("nobody-here")),
        format!("artifactregistry/v1/projects/{}/locations/us-central1/repositories/prefect-images", project.id),
    ] {
        let (status, error) = get(&path).await;
        assert_eq!((status, status_of(&error)), (404, "NOT_FOUND"), "{path}: {error}");
    }
    let (status, got) = get(&format!("cloudresourcemanager/v3/projects/{}", project.id)).await;
    assert_eq!(status, 200);
    assert_eq!(got["name"], format!("projects/{}", project.number));
    assert_eq!(got["state"], "ACTIVE");
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_finishes_service_enable_operation_after_configured_polls() {
    let fake = GcpFake::get();
    let project = fake.project("enable").await;
    project.faults(json!({"operation_polls": 3})).await;
    let names = format!("names=projects/{0}/services/{RUN}&names=projects/{0}/services/{ARTIFACT_REGISTRY}", project.id);
    let (status, got) = get(&format!("serviceusage/v1/projects/{}/services:batchGet?{names}", project.id)).await;
    assert_eq!(status, 200, "{got}");
    let services = got["services"].as_array().unwrap();
    assert_eq!(services[0]["name"], format!("projects/{}/services/{RUN}", project.number));
    assert!(services.iter().all(|s| s["state"] == "DISABLED"));

    let (status, op) = post(&format!("serviceusage/v1/projects/{}/services:batchEnable", project.id), json!({"serviceIds": [RUN, ARTIFACT_REGISTRY]})).await;
    assert_eq!(status, 200, "{op}");
    let name = op["name"].as_str().unwrap();
    assert!(name.starts_with(&format!("operations/acat.p2-{}-", project.number)), "{name}");
    assert_ne!(op["done"], true);
    assert_eq!(project.service_state(RUN).await, "DISABLED", "enabled only when the operation is done");
    let (polls, done) = poll_until_done("serviceusage", name).await;
    assert_eq!(polls, 3);
    assert_eq!(done["response"]["@type"], "type.googleapis.com/google.api.serviceusage.v1.BatchEnableServicesResponse");
    assert!(done["response"]["services"].as_array().unwrap().iter().all(|s| s["state"] == "ENABLED"));
    assert_eq!(project.service_state(ARTIFACT_REGISTRY).await, "ENABLED");

    // Enabling what is enabled: a done no-op operation.
    let (_, op) = post(&format!("serviceusage/v1/projects/{}/services:batchEnable", project.id), json!({"serviceIds": [RUN]})).await;
    assert_eq!((op["name"].as_str().unwrap(), &op["done"]), ("operations/noop.DONE_OPERATION", &json!(true)));
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_answers_service_disabled_until_the_api_is_enabled_and_propagated() {
    let fake = GcpFake::get();
    let project = fake.project("svcoff").await;
    project.faults(json!({"operation_polls": 1, "service_disabled_after_enable": 2})).await;
    let repo = format!("artifactregistry/v1/projects/{}/locations/us-central1/repositories/prefect-images", project.id);
    let (status, error) = get(&repo).await;
    assert_eq!((status, status_of(&error)), (403, "PERMISSION_DENIED"), "{error}");
    let detail = &error["error"]["details"][0];
    assert_eq!(detail["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(detail["reason"], "SERVICE_DISABLED");
    assert_eq!(detail["metadata"]["service"], ARTIFACT_REGISTRY);
    assert_eq!(detail["metadata"]["consumer"], format!("projects/{}", project.number));
    assert!(error["error"]["message"].as_str().unwrap().starts_with(&format!("Artifact Registry API has not been used in project {}", project.number)));

    let (_, op) = post(&format!("serviceusage/v1/projects/{}/services:batchEnable", project.id), json!({"serviceIds": [ARTIFACT_REGISTRY]})).await;
    poll_until_done("serviceusage", op["name"].as_str().unwrap()).await;
    for _ in 0..2 {
        let (status, error) = get(&repo).await;
        assert_eq!((status, error["error"]["details"][0]["reason"].as_str()), (403, Some("SERVICE_DISABLED")), "still propagating");
    }
    let (status, error) = get(&repo).await;
    assert_eq!((status, status_of(&error)), (404, "NOT_FOUND"), "{error}");
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_rejects_stale_policy_etag_with_409_aborted_and_keeps_other_bindings() {
    let fake = GcpFake::get();
    let project = fake.project("etag").await;
    let get_policy = format!("cloudresourcemanager/v3/projects/{}:getIamPolicy", project.id);
    let set_policy = format!("cloudresourcemanager/v3/projects/{}:setIamPolicy", project.id);
    let (status, policy) = post(&get_policy, json!({"options": {"requestedPolicyVersion": 3}})).await;
    assert_eq!(status, 200, "{policy}");
    assert_eq!(policy["bindings"], json!([{"role": "roles/owner", "members": ["user:tester@example.com"]}]));

    project.add_binding("roles/editor", "user:someone@example.com").await; // another client wrote
    let mut stale = policy.clone();
    stale["bindings"].as_array_mut().unwrap().push(json!({"role": "roles/run.developer", "members": ["user:a@example.com"]}));
    let (status, error) = post(&set_policy, json!({"policy": stale})).await;
    assert_eq!((status, status_of(&error)), (409, "ABORTED"), "{error}");
    assert!(error["error"]["message"].as_str().unwrap().starts_with("There were concurrent policy changes"));

    // The etag_race fault: the other writer strikes during the next setIamPolicy.
    let (_, fresh) = post(&get_policy, json!({"options": {"requestedPolicyVersion": 3}})).await;
    project.faults(json!({"etag_race": 1})).await;
    let (status, _) = post(&set_policy, json!({"policy": fresh})).await;
    assert_eq!(status, 409);
    assert_eq!(project.members("roles/viewer").await, ["user:other@example.com"]);
    let (_, fresh) = post(&get_policy, json!({})).await;
    let mut updated = fresh.clone();
    updated["bindings"].as_array_mut().unwrap().push(json!({"role": "roles/run.developer", "members": ["user:a@example.com"]}));
    let (status, set) = post(&set_policy, json!({"policy": updated})).await;
    assert_eq!(status, 200, "{set}");
    assert_ne!(set["etag"], fresh["etag"], "a changed policy gets a new etag");
    assert_eq!(project.members("roles/editor").await, ["user:someone@example.com"]);
    assert_eq!(project.members("roles/viewer").await, ["user:other@example.com"]);
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_rejects_binding_a_service_account_that_is_not_visible_yet() {
    let fake = GcpFake::get();
    let project = fake.project("invis").await;
    project.faults(json!({"service_account_invisible": 2})).await;
    let (status, _) = create_account(&project, "prefect-cloud-run").await;
    assert_eq!(status, 200);
    let email = project.email("prefect-cloud-run");
    let set_policy = format!("cloudresourcemanager/v3/projects/{}:setIamPolicy", project.id);
    let bind = || {
        let member = format!("serviceAccount:{email}");
        json!({"policy": {"bindings": [{"role": "roles/owner", "members": ["user:tester@example.com"]}, {"role": "roles/run.developer", "members": [member]}]}})
    };
    let (status, error) = post(&set_policy, bind()).await;
    assert_eq!((status, status_of(&error)), (400, "INVALID_ARGUMENT"), "{error}");
    assert_eq!(error["error"]["message"], format!("Service account {email} does not exist."));
    let (status, _) = get(&format!("iam/v1/projects/{}/serviceAccounts/{email}/keys?keyTypes=USER_MANAGED", project.id)).await;
    assert_eq!(status, 404, "the second call that names it does not see it either");
    let (status, policy) = post(&set_policy, bind()).await;
    assert_eq!(status, 200, "{policy}");
    assert_eq!(project.members("roles/run.developer").await, [format!("serviceAccount:{email}")]);

    // A service account that does not exist at all.
    let ghost = format!("serviceAccount:{}", project.email("ghost-account"));
    let (status, error) = post(&set_policy, json!({"policy": {"bindings": [{"role": "roles/run.developer", "members": [ghost]}]}})).await;
    assert_eq!((status, status_of(&error)), (400, "INVALID_ARGUMENT"), "{error}");
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_key_file_is_a_service_account_json_with_a_real_private_key() {
    let fake = GcpFake::get();
    let project = fake.project("keyfile").await;
    create_account(&project, "prefect-cloud-run").await;
    let email = project.email("prefect-cloud-run");
    let (status, key) = post(
        &format!("iam/v1/projects/{}/serviceAccounts/{email}/keys", project.id),
        json!({"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE", "keyAlgorithm": "KEY_ALG_RSA_2048"}),
    )
    .await;
    assert_eq!(status, 200, "{key}");
    let key_id = key["name"].as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    assert!(key_id.len() == 40 && key_id.bytes().all(|b| b.is_ascii_hexdigit()), "{key_id}");
    assert_eq!(key["keyType"], "USER_MANAGED");
    assert!(key["validAfterTime"].is_string() && key["validBeforeTime"].is_string());
    let file: Value = serde_json::from_slice(&base64_decode(key["privateKeyData"].as_str().unwrap())).unwrap();
    assert_eq!(file["type"], "service_account");
    assert_eq!(file["project_id"], project.id.as_str());
    assert_eq!(file["private_key_id"], key_id.as_str());
    assert_eq!(file["client_email"], email.as_str());
    assert_eq!(file["token_uri"], "https://oauth2.googleapis.com/token");
    assert_eq!(file["universe_domain"], "googleapis.com");
    for field in ["client_id", "auth_uri", "auth_provider_x509_cert_url", "client_x509_cert_url"] {
        assert!(file[field].is_string(), "{field}");
    }
    let pem = file["private_key"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n") && pem.trim_end().ends_with("-----END PRIVATE KEY-----"));
    assert!(pem.len() > 1500, "an RSA 2048 key in PKCS#8");

    // The key is listed (without its private data), and no private key reached the fake's log.
    let (_, listed) = get(&format!("iam/v1/projects/{}/serviceAccounts/{email}/keys?keyTypes=USER_MANAGED", project.id)).await;
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    assert!(listed["keys"][0].get("privateKeyData").is_none());
    let log = std::fs::read_to_string(format!("{}/gcp.log", std::env::var("PUSHPOOL_SANDBOX_DIR").unwrap())).unwrap();
    assert!(!log.contains("PRIVATE KEY") && !log.contains(pem.lines().nth(1).unwrap()));
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_refuses_the_eleventh_user_managed_key_with_failed_precondition() {
    let fake = GcpFake::get();
    let project = fake.project("keylimit").await;
    let email = project.seed_service_account("prefect-cloud-run", None).await;
    let ids = project.seed_keys(&email, 9).await;
    project.disable_key(&email, &ids[0]).await; // disabled keys count too
    let keys = format!("iam/v1/projects/{}/serviceAccounts/{email}/keys", project.id);
    let (status, _) = post(&keys, json!({})).await;
    assert_eq!(status, 200, "the tenth key");
    let (status, error) = post(&keys, json!({})).await;
    assert_eq!((status, status_of(&error)), (400, "FAILED_PRECONDITION"), "{error}");
    assert_eq!(error["error"]["message"], "Precondition check failed.");

    // Listing without keyTypes also shows the SYSTEM_MANAGED key every account has.
    let (_, all) = get(&keys).await;
    assert_eq!(all["keys"].as_array().unwrap().len(), 11);
    let (_, user) = get(&format!("{keys}?keyTypes=USER_MANAGED")).await;
    let user = user["keys"].as_array().unwrap();
    assert_eq!(user.len(), 10);
    assert_eq!(user.iter().filter(|k| k["disabled"] == true).count(), 1);

    // Deleting one makes room; deleting the account deletes its keys.
    let (status, _) = call(Method::DELETE, &format!("{keys}/{}", ids[1]), None).await;
    assert_eq!(status, 200);
    assert_eq!(project.user_keys(&email).await.len(), 9);
    let (status, _) = call(Method::DELETE, &format!("iam/v1/projects/{}/serviceAccounts/{email}", project.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(get(&keys).await.0, 404);
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_refuses_key_creation_under_the_org_policy_with_its_constraint() {
    let fake = GcpFake::get();
    let project = fake.project("orgpol").await;
    let email = project.seed_service_account("prefect-cloud-run", None).await;
    project.faults(json!({"key_creation_disabled": true})).await;
    let (status, error) = post(&format!("iam/v1/projects/{}/serviceAccounts/{email}/keys", project.id), json!({})).await;
    assert_eq!((status, status_of(&error)), (400, "FAILED_PRECONDITION"), "{error}");
    let violation = &error["error"]["details"][0]["violations"][0];
    assert_eq!(violation["type"], "constraints/iam.disableServiceAccountKeyCreation");
    assert_eq!(violation["subject"], format!("projects/{}", project.number));
}

#[tokio::test]
async fn fake_throttle_fault_answers_429_resource_exhausted() {
    let fake = GcpFake::get();
    let project = fake.project("throttle").await;
    project.faults(json!({"throttle": {"serviceAccounts\\.create$": 2}})).await;
    for _ in 0..2 {
        let (status, error) = create_account(&project, "prefect-cloud-run").await;
        assert_eq!((status, status_of(&error)), (429, "RESOURCE_EXHAUSTED"), "{error}");
    }
    assert_eq!(create_account(&project, "prefect-cloud-run").await.0, 200);
    assert_eq!(get(&format!("cloudresourcemanager/v3/projects/{}", project.id)).await.0, 200, "other methods are not throttled");
}

#[tokio::test]
async fn fake_rejects_output_only_and_unknown_fields_as_contract_violations() {
    let fake = GcpFake::get();
    let project = fake.project("contract").await;
    let body = json!({"accountId": "prefect-cloud-run", "serviceAccount": {"email": "x@y", "displayName": "x"}});
    let (status, error) = post(&format!("iam/v1/projects/{}/serviceAccounts", project.id), body).await;
    assert_eq!((status, status_of(&error)), (400, "INVALID_ARGUMENT"));
    assert!(error["error"]["message"].as_str().unwrap().starts_with("fake contract:"), "{error}");
    let (status, error) = get(&format!("cloudresourcemanager/v3/projects/{}?view=FULL", project.id)).await;
    assert_eq!(status, 400, "an undeclared query parameter: {error}");
    let (status, error) = post(&format!("cloudresourcemanager/v3/projects/{}:getIamPolicy", project.id), json!({"options": {"requestedPolicyVersion": "3x"}})).await;
    assert_eq!(status, 400, "{error}");
    let (status, error) = get(&format!("iam/v1/projects/{}/serviceAccountz", project.id)).await;
    assert_eq!(status, 400, "no such discovery method: {error}");
    let violations = fake.violations_of(&project).await;
    assert_eq!(violations.len(), 4, "{violations:#?}");
    assert!(violations.iter().all(|v| v["direction"] == "request"));
}

#[tokio::test]
async fn fake_accepts_the_official_rust_clients_wire_form() {
    // google-cloud-*-v1 send `$alt=json;enum-encoding=int`, enums as numbers, and the whole request
    // (path fields included) as the body of a `body: "*"` method.
    let fake = GcpFake::get();
    let project = fake.project("rustwire").await;
    let alt = "%24alt=json%3Benum-encoding%3Dint";
    let email = project.email("prefect-cloud-run");
    let body = json!({"name": format!("projects/{}", project.id), "accountId": "prefect-cloud-run", "serviceAccount": {"displayName": "x"}});
    let (status, created) = post(&format!("iam/v1/projects/{}/serviceAccounts?{alt}", project.id), body).await;
    assert_eq!(status, 200, "{created}");
    let name = format!("projects/{}/serviceAccounts/{email}", project.id);
    let (status, key) = post(&format!("iam/v1/{name}/keys?{alt}"), json!({"name": name, "privateKeyType": 2, "keyAlgorithm": 2})).await;
    assert_eq!(status, 200, "{key}");
    assert_eq!((key["keyType"].as_i64(), key["keyAlgorithm"].as_i64()), (Some(1), Some(2)), "enums answered as numbers");
    let (status, keys) = get(&format!("iam/v1/{name}/keys?keyTypes=1&{alt}")).await;
    assert_eq!((status, keys["keys"].as_array().map(Vec::len)), (200, Some(1)));
    let resource = format!("projects/{}", project.id);
    let (status, policy) =
        post(&format!("cloudresourcemanager/v3/{resource}:getIamPolicy?{alt}"), json!({"resource": resource, "options": {"requestedPolicyVersion": 3}})).await;
    assert_eq!(status, 200, "{policy}");
    let patch = json!({"serviceAccount": {"name": name, "description": "managed by pushpool"}, "updateMask": "description"});
    let (status, patched) = call(Method::PATCH, &format!("iam/v1/{name}?{alt}"), Some(patch)).await;
    assert_eq!((status, patched["description"].as_str()), (200, Some("managed by pushpool")));
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_requires_a_bearer_token() {
    let project = GcpFake::get().project("noauth").await;
    let response = http().get(format!("{}/cloudresourcemanager/v3/projects/{}", GcpFake::get().url, project.id)).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(status_of(&error), "UNAUTHENTICATED");
}

#[tokio::test]
async fn fake_artifact_registry_repository_create_label_list_delete() {
    let fake = GcpFake::get();
    let project = fake.project_with("repo", &[ARTIFACT_REGISTRY]).await;
    project.faults(json!({"operation_polls": 2})).await;
    let parent = format!("projects/{}/locations/us-central1", project.id);
    let body = json!({"format": "DOCKER", "description": "Prefect flow images", "labels": {"managed-by": "pushpool", "prefect-work-pool": "my-pool"}});
    let (status, op) = post(&format!("artifactregistry/v1/{parent}/repositories?repositoryId=prefect-images"), body.clone()).await;
    assert_eq!(status, 200, "{op}");
    assert!(op["name"].as_str().unwrap().starts_with(&format!("{parent}/operations/")));
    let (polls, done) = poll_until_done("artifactregistry", op["name"].as_str().unwrap()).await;
    assert_eq!(polls, 2);
    assert_eq!(done["response"]["name"], format!("{parent}/repositories/prefect-images"));
    let (status, error) = post(&format!("artifactregistry/v1/{parent}/repositories?repositoryId=prefect-images"), body).await;
    assert_eq!((status, status_of(&error)), (409, "ALREADY_EXISTS"));
    let (status, error) =
        post(&format!("artifactregistry/v1/{parent}/repositories?repositoryId=other"), json!({"format": "DOCKER", "labels": {"prefect.work-pool": "x"}})).await;
    assert_eq!((status, status_of(&error)), (400, "INVALID_ARGUMENT"), "label keys take no dots: {error}");

    let repo = format!("artifactregistry/v1/{parent}/repositories/prefect-images");
    let (status, got) = get(&repo).await;
    assert_eq!((status, got["format"].as_str(), got["mode"].as_str()), (200, Some("DOCKER"), Some("STANDARD_REPOSITORY")));
    let (status, patched) =
        call(Method::PATCH, &format!("{repo}?updateMask=labels"), Some(json!({"labels": {"managed-by": "pushpool", "prefect-work-pool": "other"}}))).await;
    assert_eq!((status, patched["labels"]["prefect-work-pool"].as_str()), (200, Some("other")));

    let (_, images) = get(&format!("{repo}/dockerImages?pageSize=1")).await;
    assert_eq!(images, json!({}), "Google omits empty lists");
    project.seed_images("us-central1", "prefect-images", 2).await;
    let (_, images) = get(&format!("{repo}/dockerImages?pageSize=1")).await;
    assert_eq!(images["dockerImages"].as_array().unwrap().len(), 1);
    assert!(images["nextPageToken"].is_string());

    let (status, op) = call(Method::DELETE, &repo, None).await;
    assert_eq!(status, 200, "{op}");
    poll_until_done("artifactregistry", op["name"].as_str().unwrap()).await;
    assert_eq!(get(&repo).await.0, 404);
    fake.assert_no_violations(&project).await;
}

/// Paging over the wire: two items a page when none is asked, the project's size once a test
/// sets it, the asked size otherwise, and every item reached once through the tokens.
#[tokio::test]
async fn fake_pages_docker_images_by_two_unless_asked_and_refuses_a_made_up_token() {
    let fake = GcpFake::get();
    let project = fake.project_with("pages", &[ARTIFACT_REGISTRY]).await;
    project.seed_repository("us-central1", "prefect-images", &[]).await;
    project.seed_images("us-central1", "prefect-images", 5).await;
    let images = format!("artifactregistry/v1/projects/{}/locations/us-central1/repositories/prefect-images/dockerImages", project.id);
    let walk = |query: &'static str| {
        let images = images.clone();
        async move {
            let (mut sizes, mut names, mut token) = (Vec::new(), Vec::new(), String::new());
            loop {
                let separator = if query.is_empty() { "?" } else { "&" };
                let path = if token.is_empty() { format!("{images}{query}") } else { format!("{images}{query}{separator}pageToken={token}") };
                let (status, page) = get(&path).await;
                assert_eq!(status, 200, "{page}");
                let found = page["dockerImages"].as_array().cloned().unwrap_or_default();
                sizes.push(found.len());
                names.extend(found.iter().map(|i| i["name"].as_str().unwrap().to_owned()));
                match page["nextPageToken"].as_str() {
                    Some(next) => token = next.to_owned(),
                    None => return (sizes, names),
                }
            }
        }
    };
    let (sizes, names) = walk("").await;
    assert_eq!(sizes, [2, 2, 1]);
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "every image once: {names:?}");
    assert_eq!(walk("?pageSize=4").await.0, [4, 1]);
    project.page_size(3).await;
    assert_eq!(walk("").await.0, [3, 2]);
    let (status, error) = get(&format!("{images}?pageToken=2")).await;
    assert_eq!((status, status_of(&error)), (400, "INVALID_ARGUMENT"));
    fake.assert_no_violations(&project).await;
}

#[tokio::test]
async fn fake_counts_writes_per_project_with_operations_to_their_project() {
    let fake = GcpFake::get();
    let project = fake.project("calls").await;
    let other = fake.project("callsother").await;
    let mark = project.mark().await;
    post(&format!("cloudresourcemanager/v3/projects/{}:getIamPolicy", project.id), json!({})).await;
    let (_, op) = post(&format!("serviceusage/v1/projects/{}/services:batchEnable", project.id), json!({"serviceIds": [RUN]})).await;
    poll_until_done("serviceusage", op["name"].as_str().unwrap()).await;
    create_account(&other, "prefect-cloud-run").await;
    assert_eq!(project.writes_since(mark).await, ["serviceusage.services.batchEnable"]);
    let calls = project.calls().await;
    assert!(calls.iter().filter(|c| c.action.as_deref() == Some("serviceusage.operations.get")).count() >= 2);
    assert_eq!(other.writes_since(0).await, ["iam.projects.serviceAccounts.create"]);
}

#[tokio::test]
async fn proxy_channel_in_front_of_the_fake_counts_gcp_writes_and_injects_google_errors() {
    let sandbox = Sandbox::get();
    let fake = GcpFake::get();
    let project = fake.project("proxied").await;
    let channel = Channel::open(&sandbox, &fake.url).await;
    let base = channel.url();
    call_at(&base, Method::POST, &format!("cloudresourcemanager/v3/projects/{}:getIamPolicy", project.id), Some(json!({}))).await;
    let create = format!("iam/v1/projects/{}/serviceAccounts", project.id);
    let (status, _) = call_at(&base, Method::POST, &create, Some(json!({"accountId": "prefect-cloud-run"}))).await;
    assert_eq!(status, 200);
    let writes = channel.writes_since(0).await;
    assert_eq!(writes, [format!("gcp.iam POST /{create}")]);

    channel.set_faults(json!({format!("POST /{create}"): {"kind": "throttle", "times": 1}})).await;
    let (status, error) = call_at(&base, Method::POST, &create, Some(json!({"accountId": "prefect-second"}))).await;
    assert_eq!((status, status_of(&error)), (429, "RESOURCE_EXHAUSTED"), "{error}");
}

#[tokio::test]
async fn gcp_world_points_pushpool_at_the_fake_and_keeps_real_gcloud_off_path() {
    let world = World::new("gcpenv").await;
    let gcp = GcpWorld::new("gcpenv").await;
    let command = world.gcp_command(&gcp, &["--version"]);
    let env: std::collections::HashMap<String, String> =
        command.get_envs().filter_map(|(k, v)| Some((k.to_string_lossy().into_owned(), v?.to_string_lossy().into_owned()))).collect();
    assert_eq!(env["CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM"], format!("{}/iam/", gcp.fake.url));
    assert_eq!(env["CLOUDSDK_API_ENDPOINT_OVERRIDES_ARTIFACTREGISTRY"], format!("{}/artifactregistry/", gcp.fake.url));
    assert_eq!(env["GCE_METADATA_HOST"], "127.0.0.1:9");
    let adc: Value = serde_json::from_str(&std::fs::read_to_string(&env["GOOGLE_APPLICATION_CREDENTIALS"]).unwrap()).unwrap();
    assert_eq!(adc["type"], "service_account");
    let config = std::fs::read_to_string(format!("{}/configurations/config_default", env["CLOUDSDK_CONFIG"])).unwrap();
    assert!(config.contains(&format!("project = {}", gcp.project.id)) && config.contains("region = us-central1"));
    let on_path = |path: &str| std::env::split_paths(path).any(|dir| dir.join("gcloud").exists());
    assert!(!on_path(&env["PATH"]), "no gcloud on {}", env["PATH"]);
    assert!(env["PATH"].split(':').any(|d| std::path::Path::new(d).join("bash").exists()), "the rest of PATH stays");

    // With the fake gcloud: it answers from the same configuration and logs its arguments.
    let gcp = gcp.with_gcloud();
    let command = world.gcp_command(&gcp, &["--version"]);
    let path = command.get_envs().find(|(k, _)| *k == "PATH").and_then(|(_, v)| v).unwrap().to_string_lossy().into_owned();
    assert!(path.contains(fake_gcloud_dir().to_str().unwrap()));
    let output =
        Command::new(fake_gcloud_dir().join("gcloud")).args(["config", "config-helper", "--format=json"]).env_clear().env("PATH", &path).envs(gcp.env()).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let helper: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(helper["configuration"]["properties"]["core"]["project"], gcp.project.id.as_str());
    assert_eq!(helper["credential"]["access_token"], "ya29.fake-gcloud-token");
    assert_eq!(gcp.gcloud_calls()[0]["argv"], json!(["config", "config-helper", "--format=json"]));
}

#[tokio::test]
async fn prefect_gcp_loads_a_gcp_credentials_block_made_from_a_fake_key() {
    let world = World::new("gcpblock").await;
    let gcp = GcpWorld::new("gcpblock").await;
    let email = gcp.project.seed_service_account("prefect-cloud-run", None).await;
    let (_, key) = post(&format!("iam/v1/projects/{}/serviceAccounts/{email}/keys", gcp.project.id), json!({})).await;
    let info: Value = serde_json::from_slice(&base64_decode(key["privateKeyData"].as_str().unwrap())).unwrap();
    let block_type = world.prefect_get("/block_types/slug/gcp-credentials").await.expect("the server knows gcp-credentials");
    let response = http()
        .post(format!("{}/block_schemas/filter", world.sandbox.prefect))
        .json(&json!({"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 1}))
        .send()
        .await
        .unwrap();
    let schemas: Vec<Value> = response.json().await.unwrap();
    let name = format!("{}-push-pool-credentials", world.pool);
    let document = json!({"name": name, "block_type_id": block_type["id"], "block_schema_id": schemas[0]["id"],
                          "data": {"service_account_info": info, "project": gcp.project.id}});
    assert_eq!(world.prefect_send(Method::POST, "/block_documents/", document).await, 201);
    let loaded = world.load_gcp_credentials_with_prefect(&name);
    assert_eq!(loaded["project"], gcp.project.id.as_str());
    assert_eq!(loaded["client_email"], email.as_str());
    assert_eq!(loaded["private_key_id"], key["name"].as_str().unwrap().rsplit('/').next().unwrap());
    assert!(world.gcp_block().await.is_some());
    assert!(!world.gcp_secrets(&gcp).is_empty(), "the block's private key is a secret");
}
