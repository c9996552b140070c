//! The Azure fake itself (tests/sandbox/azure_fake.py) and the fake `az`, driven directly over HTTP
//! and as processes: they answer with Azure's documented semantics and enforce the official
//! examples' and the Graph schema's contract. These tests prove the fake that pushpool's Azure
//! tests rely on, not the live cloud.
//!
//! Run: `scripts/sandbox.sh up && eval "$(scripts/sandbox.sh env)" && cargo test --test azure_fake`

mod support;

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};
use support::azure::{
    ACR_PULL, API_AUTHORIZATION, API_IDENTITY, API_REGISTRY, API_RESOURCES, API_SUBSCRIPTIONS, AzureFake, AzureWorld, CLOUD, CONTRIBUTOR, fake_az_dir, form_body,
    path_without_az, unique_registry_name,
};
use support::{Sandbox, World, http};

/// One answer: status, headers we care about, JSON body (Null when empty).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }
}

/// A request to `url` with `token` (None: no Authorization header) and an optional JSON body.
async fn send(method: Method, url: &str, token: Option<&str>, body: Option<Value>) -> Answer {
    let mut request = http().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

async fn post_form(url: &str, pairs: &[(&str, &str)]) -> Answer {
    let response = http().post(url).header("Content-Type", "application/x-www-form-urlencoded").body(form_body(pairs)).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Answer { status, headers, body: response.json().await.unwrap_or(Value::Null) }
}

/// ARM and Graph calls of one AzureWorld, with its tokens.
struct Client<'a> {
    azure: &'a AzureWorld,
    arm: String,
    graph: String,
}

impl<'a> Client<'a> {
    fn new(azure: &'a AzureWorld) -> Self {
        Self { azure, arm: azure.token("arm"), graph: azure.token("graph") }
    }

    /// `path` under /arm (starting with /subscriptions/...), `?api-version=` appended.
    async fn arm(&self, method: Method, path: &str, api_version: &str, body: Option<Value>) -> Answer {
        let sep = if path.contains('?') { '&' } else { '?' };
        send(method, &format!("{}{}{sep}api-version={api_version}", self.azure.arm_url().trim_end_matches('/'), path), Some(&self.arm), body).await
    }

    async fn graph(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        send(method, &format!("{}v1.0{path}", self.azure.graph_url()), Some(&self.graph), body).await
    }

    fn sub(&self) -> String {
        format!("/subscriptions/{}", self.azure.subscription.id)
    }

    fn rg(&self, rg: &str) -> String {
        format!("{}/resourcegroups/{rg}", self.sub())
    }

    fn registry(&self, rg: &str, name: &str) -> String {
        format!("{}/providers/Microsoft.ContainerRegistry/registries/{name}", self.rg(rg))
    }

    fn identity(&self, rg: &str, name: &str) -> String {
        format!("{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}", self.rg(rg))
    }

    fn role(&self, role: &str) -> String {
        format!("{}/providers/Microsoft.Authorization/roleDefinitions/{role}", self.sub())
    }

    async fn put_rg(&self, rg: &str) -> Answer {
        self.arm(Method::PUT, &self.rg(rg), API_RESOURCES, Some(json!({"location": "eastus", "tags": {"managed-by": "pushpool"}}))).await
    }

    async fn put_registry(&self, rg: &str, name: &str) -> Answer {
        let body = json!({"location": "eastus", "sku": {"name": "Basic"}, "tags": {"managed-by": "pushpool", "prefect.work-pool": "p"}, "properties": {"adminUserEnabled": false}});
        self.arm(Method::PUT, &self.registry(rg, name), API_REGISTRY, Some(body)).await
    }

    async fn put_identity(&self, rg: &str, name: &str) -> Answer {
        self.arm(Method::PUT, &self.identity(rg, name), API_IDENTITY, Some(json!({"location": "eastus", "tags": {"managed-by": "pushpool"}}))).await
    }

    async fn put_assignment(&self, scope: &str, name: &str, role: &str, principal: &str) -> Answer {
        let body = json!({"properties": {"roleDefinitionId": self.role(role), "principalId": principal, "principalType": "ServicePrincipal"}});
        self.arm(Method::PUT, &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"), API_AUTHORIZATION, Some(body)).await
    }

    /// An application with a service principal, made through Graph; (object id, appId).
    async fn app_with_principal(&self, name: &str) -> (String, String) {
        let app = self.graph(Method::POST, "/applications", Some(json!({"displayName": name, "tags": ["managed-by=pushpool"]}))).await;
        assert_eq!(app.status, 201, "{}", app.body);
        let app_id = app.body["appId"].as_str().unwrap().to_owned();
        let sp = self.graph(Method::POST, "/servicePrincipals", Some(json!({"appId": app_id}))).await;
        assert_eq!(sp.status, 201, "{}", sp.body);
        (app.body["id"].as_str().unwrap().to_owned(), app_id)
    }
}

fn uuid_like(n: u32) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", n, std::process::id())
}

fn is_guid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12] && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[test]
fn fake_contract_checker_unit_tests_pass() {
    let sandbox = Sandbox::get();
    let output = Command::new(&sandbox.python)
        .args(["-m", "unittest", "discover", "-s", "tests/sandbox", "-p", "test_azure_fake.py"])
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
async fn fake_answers_201_on_create_and_200_on_update_with_server_computed_fields() {
    let azure = AzureWorld::new("put").await;
    let c = Client::new(&azure);
    let sub = c.arm(Method::GET, &c.sub(), API_SUBSCRIPTIONS, None).await;
    assert_eq!((sub.status, sub.body["state"].as_str()), (200, Some("Enabled")), "{}", sub.body);
    assert_eq!(sub.body["tenantId"], azure.tenant.id.as_str());
    assert_eq!(sub.body["displayName"], azure.subscription.name.as_str());

    assert_eq!(c.arm(Method::HEAD, &c.rg("prefect-aci-push-pool-rg"), API_RESOURCES, None).await.status, 404);
    let created = c.put_rg("prefect-aci-push-pool-rg").await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(c.arm(Method::HEAD, &c.rg("prefect-aci-push-pool-rg"), API_RESOURCES, None).await.status, 204);
    assert_eq!(created.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(created.body["id"], format!("/subscriptions/{}/resourceGroups/prefect-aci-push-pool-rg", azure.subscription.id));
    let again = c.put_rg("prefect-aci-push-pool-rg").await;
    assert_eq!(again.status, 200, "an update");
    let moved = c.arm(Method::PUT, &c.rg("prefect-aci-push-pool-rg"), API_RESOURCES, Some(json!({"location": "westus"}))).await;
    assert_eq!((moved.status, moved.code()), (409, "InvalidResourceGroupLocation"));

    let identity = c.put_identity("prefect-aci-push-pool-rg", "prefect-acr-identity").await;
    assert_eq!(identity.status, 201, "{}", identity.body);
    let principal = identity.body["properties"]["principalId"].as_str().unwrap().to_owned();
    assert!(is_guid(&principal) && is_guid(identity.body["properties"]["clientId"].as_str().unwrap()));
    assert_eq!(identity.body["properties"]["tenantId"], azure.tenant.id.as_str());
    assert!(identity.body["id"].as_str().unwrap().contains("/resourcegroups/"), "the service answers resourcegroups in lower case");
    let again = c.put_identity("prefect-aci-push-pool-rg", "prefect-acr-identity").await;
    assert_eq!((again.status, again.body["properties"]["principalId"].as_str()), (200, Some(principal.as_str())));
    let state = azure.tenant.state().await;
    assert!(state["servicePrincipals"].as_array().unwrap().iter().any(|s| s["id"] == principal.as_str() && s["servicePrincipalType"] == "ManagedIdentity"));

    let missing = c.arm(Method::GET, &c.identity("prefect-aci-push-pool-rg", "nope"), API_IDENTITY, None).await;
    assert_eq!((missing.status, missing.code()), (404, "ResourceNotFound"));
    let no_group = c.arm(Method::GET, &c.identity("no-such-rg", "x-identity"), API_IDENTITY, None).await;
    assert_eq!((no_group.status, no_group.code()), (404, "ResourceGroupNotFound"));
    assert_eq!(no_group.message(), "Resource group 'no-such-rg' could not be found.");
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_polls_a_new_registry_through_azure_async_operation_until_succeeded() {
    let azure = AzureWorld::new("lro").await;
    azure.subscription.faults(json!({"operation_polls": 3})).await;
    let c = Client::new(&azure);
    c.put_rg("rg").await;
    let name = unique_registry_name("prefectlro");
    let created = c.put_registry("rg", &name).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["properties"]["provisioningState"], "Creating");
    assert_eq!(created.body["properties"]["loginServer"], format!("{name}.azurecr.io"));
    assert_eq!(created.body["sku"], json!({"name": "Basic", "tier": "Basic"}));
    let status_url = created.header("Azure-AsyncOperation").expect("an Azure-AsyncOperation header");
    assert!(status_url.starts_with(&format!("{}/arm/subscriptions/{}/", azure.endpoint(), azure.subscription.id)), "{status_url}");
    assert!(status_url.ends_with(&format!("api-version={API_REGISTRY}")));
    for _ in 0..2 {
        let poll = send(Method::GET, &status_url, Some(&c.arm), None).await;
        assert_eq!(poll.body, json!({"status": "InProgress"}));
        let got = c.arm(Method::GET, &c.registry("rg", &name), API_REGISTRY, None).await;
        assert_eq!(got.body["properties"]["provisioningState"], "Creating");
    }
    let poll = send(Method::GET, &status_url, Some(&c.arm), None).await;
    assert_eq!(poll.body, json!({"status": "Succeeded"}));
    let got = c.arm(Method::GET, &c.registry("rg", &name), API_REGISTRY, None).await;
    assert_eq!((got.status, got.body["properties"]["provisioningState"].as_str()), (200, Some("Succeeded")));

    let updated = c.put_registry("rg", &name).await;
    assert_eq!((updated.status, updated.header("Azure-AsyncOperation")), (200, None), "an update is synchronous");
    let listed = c.arm(Method::GET, &format!("{}/providers/Microsoft.ContainerRegistry/registries", c.rg("rg")), API_REGISTRY, None).await;
    assert_eq!(listed.body["value"][0]["tags"]["prefect.work-pool"], "p", "the list shows tags: the tag finds the registry again");

    let usages_path = format!("{}/listUsages", c.registry("rg", &name));
    let usages = c.arm(Method::GET, &usages_path, API_REGISTRY, None).await;
    assert_eq!(usages.status, 200, "{}", usages.body);
    assert_eq!(usages.body["value"][0], json!({"name": "Size", "limit": 10737418240u64, "currentValue": 0, "unit": "Bytes"}));
    azure.subscription.seed_images("rg", &name, 3, 300_000_000).await;
    let usages = c.arm(Method::GET, &usages_path, API_REGISTRY, None).await;
    assert_eq!(usages.body["value"][0]["currentValue"], 300_000_000);
    azure.fake.assert_no_violations(&azure).await;
    let as_post = c.arm(Method::POST, &usages_path, API_REGISTRY, None).await;
    assert_eq!(as_post.status, 400, "listUsages is a GET in the REST reference");
    let violations = azure.fake.violations_of(&azure).await;
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(violations[0]["path"].as_str().unwrap().ends_with("/listUsages"));
}

#[tokio::test]
async fn fake_checks_registry_names_globally() {
    let azure = AzureWorld::new("acrname").await;
    let other = AzureWorld::new("acrname2").await;
    let c = Client::new(&azure);
    let o = Client::new(&other);
    o.put_rg("theirs").await;
    let name = unique_registry_name("prefect");
    assert_eq!(o.put_registry("theirs", &name).await.status, 201);
    let check = |n: &str| json!({"name": n, "type": "Microsoft.ContainerRegistry/registries"});
    let path = format!("{}/providers/Microsoft.ContainerRegistry/checkNameAvailability", c.sub());
    let taken = c.arm(Method::POST, &path, API_REGISTRY, Some(check(&name.to_uppercase()))).await;
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert_eq!((taken.body["nameAvailable"].as_bool(), taken.body["reason"].as_str()), (Some(false), Some("AlreadyExists")));
    for bad in ["abcd", "prefect-images", &"a".repeat(51)] {
        let invalid = c.arm(Method::POST, &path, API_REGISTRY, Some(check(bad))).await;
        assert_eq!(invalid.body["reason"], "Invalid", "{bad}");
    }
    let free = c.arm(Method::POST, &path, API_REGISTRY, Some(check(&format!("{name}x")))).await;
    assert_eq!(free.body, json!({"nameAvailable": true}));
    c.put_rg("mine").await;
    let clash = c.put_registry("mine", &name).await;
    assert_eq!((clash.status, clash.code()), (400, "AlreadyInUse"), "{}", clash.body);
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_answers_role_assignment_exists_for_the_same_grant_under_another_name() {
    let azure = AzureWorld::new("raexists").await;
    let c = Client::new(&azure);
    c.put_rg("rg").await;
    let principal = c.put_identity("rg", "prefect-acr-identity").await.body["properties"]["principalId"].as_str().unwrap().to_owned();
    let scope = c.rg("rg");
    let first = c.put_assignment(&scope, &uuid_like(1), CONTRIBUTOR, &principal).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["properties"]["scope"], scope.as_str());
    let rerun = c.put_assignment(&scope, &uuid_like(1), CONTRIBUTOR, &principal).await;
    assert_eq!(rerun.status, 200, "the same name and grant: a re-run");
    let other_name = c.put_assignment(&scope, &uuid_like(2), CONTRIBUTOR, &principal).await;
    assert_eq!((other_name.status, other_name.code()), (409, "RoleAssignmentExists"), "{}", other_name.body);
    let changed = c.put_assignment(&scope, &uuid_like(1), ACR_PULL, &principal).await;
    assert_eq!((changed.status, changed.code()), (400, "RoleAssignmentUpdateNotPermitted"));
    let not_guid = c.put_assignment(&scope, "contributor-for-pool", CONTRIBUTOR, &principal).await;
    assert_eq!((not_guid.status, not_guid.code()), (400, "InvalidRoleAssignmentId"));
    let unknown_role = c.put_assignment(&scope, &uuid_like(3), "00000000-0000-0000-0000-000000000001", &principal).await;
    assert_eq!((unknown_role.status, unknown_role.code()), (400, "RoleDefinitionDoesNotExist"));

    // AcrPull at a registry's scope: listed under the group too (the service lists below a scope),
    // and gone with the registry.
    azure.subscription.faults(json!({"operation_polls": 0})).await;
    let registry = unique_registry_name("prefectra");
    c.put_registry("rg", &registry).await;
    let registry_scope = c.registry("rg", &registry);
    let pull = c.put_assignment(&registry_scope, &uuid_like(4), ACR_PULL, &principal).await;
    assert_eq!((pull.status, pull.body["properties"]["scope"].as_str()), (201, Some(registry_scope.as_str())), "{}", pull.body);
    let all = c.arm(Method::GET, &format!("{scope}/providers/Microsoft.Authorization/roleAssignments"), API_AUTHORIZATION, None).await;
    assert_eq!(all.body["value"].as_array().map(Vec::len), Some(2), "{}", all.body);
    assert_eq!(c.arm(Method::DELETE, &registry_scope, API_REGISTRY, None).await.status, 200);
    assert_eq!(azure.subscription.role_assignments().await.len(), 1, "the registry's assignment went with it");
    let gone = c.put_assignment(&registry_scope, &uuid_like(6), ACR_PULL, &principal).await;
    assert_eq!((gone.status, gone.code()), (404, "ResourceNotFound"), "no assignment on a scope that does not exist");

    let filter = format!("{scope}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20'{principal}'");
    let listed = c.arm(Method::GET, &filter, API_AUTHORIZATION, None).await;
    assert_eq!((listed.status, listed.body["value"].as_array().map(Vec::len)), (200, Some(1)), "{}", listed.body);
    let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", uuid_like(1));
    assert_eq!(c.arm(Method::DELETE, &path, API_AUTHORIZATION, None).await.status, 200);
    assert_eq!(c.arm(Method::DELETE, &path, API_AUTHORIZATION, None).await.status, 204);
    assert_eq!(c.arm(Method::GET, &path, API_AUTHORIZATION, None).await.status, 404);
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_answers_principal_not_found_while_a_new_principal_replicates_then_assigns() {
    let azure = AzureWorld::new("replica").await;
    azure.tenant.faults(json!({"principal_not_found": 2})).await;
    let c = Client::new(&azure);
    c.put_rg("rg").await;
    c.put_registry("rg", &unique_registry_name("prefectrep")).await;
    let (_, app_id) = c.app_with_principal("prefect-aci-push-pool-app").await;
    let sp = c.graph(Method::GET, &format!("/servicePrincipals?$filter=appId%20eq%20'{app_id}'"), None).await;
    let principal = sp.body["value"][0]["id"].as_str().unwrap().to_owned();
    let scope = c.rg("rg");
    for _ in 0..2 {
        let early = c.put_assignment(&scope, &uuid_like(10), CONTRIBUTOR, &principal).await;
        assert_eq!((early.status, early.code()), (400, "PrincipalNotFound"), "{}", early.body);
        assert!(early.message().contains("replication delay"), "{}", early.message());
    }
    let later = c.put_assignment(&scope, &uuid_like(10), CONTRIBUTOR, &principal).await;
    assert_eq!(later.status, 201, "{}", later.body);
    let ghost = c.put_assignment(&scope, &uuid_like(11), CONTRIBUTOR, "00000000-1111-2222-3333-444444444444").await;
    assert_eq!((ghost.status, ghost.code()), (400, "PrincipalNotFound"), "a principal that does not exist at all");
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_token_endpoint_accepts_only_a_live_secret_of_an_app_with_a_service_principal() {
    let azure = AzureWorld::new("secrets").await;
    let c = Client::new(&azure);
    let app = c.graph(Method::POST, "/applications", Some(json!({"displayName": "prefect-aci-push-pool-app", "notes": "managed by pushpool"}))).await;
    assert_eq!(app.status, 201, "{}", app.body);
    assert_eq!(app.body["passwordCredentials"], json!([]));
    let (id, app_id) = (app.body["id"].as_str().unwrap().to_owned(), app.body["appId"].as_str().unwrap().to_owned());
    assert!(is_guid(&id) && is_guid(&app_id) && id != app_id);
    let body = json!({"passwordCredential": {"displayName": "pushpool", "endDateTime": "2099-01-01T00:00:00Z"}});
    let added = c.graph(Method::POST, &format!("/applications/{id}/addPassword"), Some(body.clone())).await;
    assert_eq!(added.status, 200, "{}", added.body);
    let secret = added.body["secretText"].as_str().unwrap().to_owned();
    let key_id = added.body["keyId"].as_str().unwrap().to_owned();
    assert_eq!((secret.len(), added.body["hint"].as_str()), (40, Some(&secret[..3])));
    assert_eq!(added.body["endDateTime"], "2099-01-01T00:00:00Z");
    let listed = c.graph(Method::GET, &format!("/applications/{id}"), None).await;
    assert_eq!(listed.body["passwordCredentials"][0]["keyId"], key_id.as_str());
    assert_eq!(listed.body["passwordCredentials"][0]["secretText"], Value::Null, "a secret's text is shown once");

    let token_url = format!("{}/{}/oauth2/v2.0/token", azure.login_url(), azure.tenant.id);
    let scope = format!("{}.default", azure.arm_url());
    let grant = |secret: String| {
        let (token_url, scope, app_id) = (token_url.clone(), scope.clone(), app_id.clone());
        async move { post_form(&token_url, &[("client_id", &app_id), ("client_secret", &secret), ("scope", &scope), ("grant_type", "client_credentials")]).await }
    };
    let no_sp = grant(secret.clone()).await;
    assert_eq!((no_sp.status, no_sp.body["error_codes"][0].as_u64()), (401, Some(7000229)), "{}", no_sp.body);
    assert_eq!(c.graph(Method::POST, "/servicePrincipals", Some(json!({"appId": app_id}))).await.status, 201);
    let ok = grant(secret.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let token = ok.body["access_token"].as_str().unwrap();
    assert!(token.starts_with(&format!("fake.arm.{}.", azure.tenant.id)), "{token}");
    let as_sp = send(Method::GET, &format!("{}subscriptions/{}?api-version={API_SUBSCRIPTIONS}", azure.arm_url(), azure.subscription.id), Some(token), None).await;
    assert_eq!(as_sp.status, 200, "the service principal's token works against ARM");
    let wrong = grant(format!("{}{}", &secret[..39], if secret.ends_with('x') { 'y' } else { 'x' })).await;
    assert_eq!((wrong.status, wrong.body["error"].as_str()), (401, Some("invalid_client")));
    assert_eq!(wrong.body["error_codes"][0], 7000215);

    let seeded = azure.tenant.seed_application("seeded-app", &[], 2, true).await;
    azure.tenant.expire_secret(&seeded.id, &seeded.secrets[0].0).await;
    assert_eq!(azure.tenant.login_status(&seeded.app_id, &seeded.secrets[0].1).await, 401, "expired");
    assert_eq!(azure.tenant.login_status(&seeded.app_id, &seeded.secrets[1].1).await, 200, "the other is live");

    let removed = c.graph(Method::POST, &format!("/applications/{id}/removePassword"), Some(json!({"keyId": key_id}))).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(grant(secret.clone()).await.status, 401, "a removed secret no longer logs in");
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_refuses_add_password_past_the_secret_limit() {
    let azure = AzureWorld::new("limit").await;
    let c = Client::new(&azure);
    let seeded = azure.tenant.seed_application("prefect-aci-push-pool-app", &[], 9, false).await;
    let path = format!("/applications/{}/addPassword", seeded.id);
    let add = || c.graph(Method::POST, &path, Some(json!({"passwordCredential": {"displayName": "pushpool"}})));
    assert_eq!(add().await.status, 200, "the tenth");
    let refused = add().await;
    assert_eq!((refused.status, refused.code()), (400, "Request_BadRequest"), "{}", refused.body);
    assert!(refused.message().starts_with("The size of the object has exceeded its limit"));
    assert!(refused.body["error"]["innerError"]["request-id"].is_string(), "Graph's envelope");
    azure.tenant.faults(json!({"secret_limit": 2})).await;
    assert_eq!(add().await.status, 400);
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_filters_applications_and_service_principals_server_side() {
    let azure = AzureWorld::new("filter").await;
    let c = Client::new(&azure);
    let (_, app_id) = c.app_with_principal("prefect-aci-push-pool-app").await;
    c.graph(Method::POST, "/applications", Some(json!({"displayName": "someone else's"}))).await;
    let by_name = c.graph(Method::GET, "/applications?$filter=displayName%20eq%20'prefect-aci-push-pool-app'", None).await;
    assert_eq!(by_name.body["value"].as_array().unwrap().len(), 1, "{}", by_name.body);
    assert!(by_name.body["@odata.context"].as_str().unwrap().ends_with("#applications"));
    let quoted = c.graph(Method::GET, "/applications?$filter=displayName%20eq%20'someone%20else''s'", None).await;
    assert_eq!(quoted.body["value"].as_array().unwrap().len(), 1, "'' escapes a quote");
    let by_app_id = c.graph(Method::GET, &format!("/applications?$filter=appId%20eq%20'{app_id}'"), None).await;
    assert_eq!(by_app_id.body["value"][0]["appId"], app_id.as_str());
    let sp = c.graph(Method::GET, &format!("/servicePrincipals?$filter=appId%20eq%20'{app_id}'"), None).await;
    assert_eq!(sp.body["value"].as_array().unwrap().len(), 1);
    let unsupported = c.graph(Method::GET, "/applications?$filter=startswith(displayName,'prefect')", None).await;
    assert_eq!((unsupported.status, unsupported.code()), (400, "Request_UnsupportedQuery"));
    let dup = c.graph(Method::POST, "/servicePrincipals", Some(json!({"appId": app_id}))).await;
    assert_eq!(dup.status, 409, "{}", dup.body);
    let app_key = by_app_id.body["value"][0]["id"].as_str().unwrap().to_owned();
    let patched = c.graph(Method::PATCH, &format!("/applications/{app_key}"), Some(json!({"tags": ["managed-by=pushpool", "prefect.work-pool=a"]}))).await;
    assert_eq!(patched.status, 204);
    assert_eq!(c.graph(Method::GET, &format!("/applications/{app_key}"), None).await.body["tags"][1], "prefect.work-pool=a");
    assert_eq!(c.graph(Method::DELETE, &format!("/applications/{app_key}"), None).await.status, 204);
    let gone = c.graph(Method::GET, &format!("/servicePrincipals?$filter=appId%20eq%20'{app_id}'"), None).await;
    assert_eq!(gone.body["value"], json!([]), "deleting the application deletes its service principal");
    let missing = c.graph(Method::GET, &format!("/applications/{app_key}"), None).await;
    assert_eq!((missing.status, missing.code()), (404, "Request_ResourceNotFound"));
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_requires_one_token_per_audience_and_the_subscriptions_tenant() {
    let azure = AzureWorld::new("audience").await;
    let c = Client::new(&azure);
    let sub_url = format!("{}subscriptions/{}?api-version={API_SUBSCRIPTIONS}", azure.arm_url(), azure.subscription.id);
    let apps_url = format!("{}v1.0/applications", azure.graph_url());
    let none = send(Method::GET, &sub_url, None, None).await;
    assert_eq!((none.status, none.code()), (401, "AuthenticationFailed"));
    let graph_on_arm = send(Method::GET, &sub_url, Some(&c.graph), None).await;
    assert_eq!((graph_on_arm.status, graph_on_arm.code()), (401, "InvalidAuthenticationTokenAudience"));
    let arm_on_graph = send(Method::GET, &apps_url, Some(&c.arm), None).await;
    assert_eq!((arm_on_graph.status, arm_on_graph.code()), (401, "InvalidAuthenticationToken"));
    assert_eq!(arm_on_graph.message(), "Access token validation failure. Invalid audience.");
    assert!(arm_on_graph.body["error"]["innerError"].is_object());
    let foreign = send(Method::GET, &sub_url, Some(&format!("fake.foreign.{}.abcdefghij", azure.tenant.id)), None).await;
    assert_eq!(foreign.status, 401, "a token for the public cloud's ARM is not this cloud's");
    let other = AzureWorld::new("audience2").await;
    let other_tenant = send(Method::GET, &sub_url, Some(&other.token("arm")), None).await;
    assert_eq!((other_tenant.status, other_tenant.code()), (401, "InvalidAuthenticationTokenTenant"));
    let unknown = send(Method::GET, &format!("{}subscriptions/{}?api-version={API_SUBSCRIPTIONS}", azure.arm_url(), uuid_like(99)), Some(&c.arm), None).await;
    assert_eq!((unknown.status, unknown.code()), (404, "SubscriptionNotFound"));
    assert_eq!(send(Method::GET, &sub_url, Some(&c.arm), None).await.status, 200);
    assert_eq!(send(Method::GET, &apps_url, Some(&c.graph), None).await.status, 200);
}

#[tokio::test]
async fn fake_throttles_with_429_and_retry_after_in_each_services_envelope() {
    let azure = AzureWorld::new("throttle").await;
    azure.subscription.faults(json!({"throttle": {"resourceGroups/write$": 2}, "retry_after": 3})).await;
    azure.tenant.faults(json!({"throttle": {"^applications\\.create$": 1}})).await;
    let c = Client::new(&azure);
    for _ in 0..2 {
        let throttled = c.put_rg("rg").await;
        assert_eq!((throttled.status, throttled.code()), (429, "SubscriptionRequestsThrottled"), "{}", throttled.body);
        assert_eq!(throttled.header("Retry-After").as_deref(), Some("3"));
    }
    assert_eq!(c.put_rg("rg").await.status, 201);
    assert_eq!(c.arm(Method::GET, &c.rg("rg"), API_RESOURCES, None).await.status, 200, "reads are not throttled by a write pattern");
    let throttled = c.graph(Method::POST, "/applications", Some(json!({"displayName": "x"}))).await;
    assert_eq!((throttled.status, throttled.code()), (429, "TooManyRequests"));
    assert_eq!(throttled.header("Retry-After").as_deref(), Some("1"));
    assert_eq!(c.graph(Method::POST, "/applications", Some(json!({"displayName": "x"}))).await.status, 201);
}

#[tokio::test]
async fn fake_rejects_contract_violations_and_records_them() {
    let azure = AzureWorld::new("contract").await;
    let c = Client::new(&azure);
    let old = c.arm(Method::PUT, &c.rg("rg"), "2019-10-01", Some(json!({"location": "eastus"}))).await;
    assert_eq!((old.status, old.code()), (400, "InvalidRequestContent"));
    assert!(old.message().starts_with("fake contract: api-version 2019-10-01, but resourceGroups.createOrUpdate is pinned to 2021-04-01"), "{}", old.message());
    let none = send(Method::GET, &format!("{}subscriptions/{}", azure.arm_url(), azure.subscription.id), Some(&c.arm), None).await;
    assert_eq!((none.status, none.code()), (400, "MissingApiVersionParameter"));
    c.put_rg("rg").await;
    let extra = c
        .arm(
            Method::PUT,
            &c.registry("rg", "prefectcontract1"),
            API_REGISTRY,
            Some(json!({"location": "eastus", "sku": {"name": "Basic", "capacity": 1}, "properties": {"loginServer": "x"}})),
        )
        .await;
    assert_eq!(extra.status, 400);
    assert!(extra.message().contains("sku.capacity: not a field of the official example") && extra.message().contains("properties.loginServer"), "{}", extra.message());
    let bad_type = c.put_assignment(&c.rg("rg"), &uuid_like(5), CONTRIBUTOR, "x").await;
    assert_eq!(bad_type.status, 400, "not a contract problem: a principal that does not exist");
    let graph = c.graph(Method::POST, "/applications", Some(json!({"displayName": "x", "appId": "mine", "colour": "red"}))).await;
    assert_eq!((graph.status, graph.code()), (400, "BadRequest"));
    assert!(graph.message().starts_with("fake contract:") && graph.message().contains("colour: unknown property of application"));
    let unmodelled = c.graph(Method::GET, "/users", None).await;
    assert_eq!(unmodelled.status, 400);
    let violations = azure.fake.violations_of(&azure).await;
    assert_eq!(violations.len(), 5, "{violations:#?}");
    assert!(violations.iter().all(|v| v["direction"] == "request"));
    assert_eq!(violations.iter().filter(|v| v["service"] == "graph").count(), 2);
}

#[tokio::test]
async fn fake_deletes_a_resource_group_and_its_contents_through_a_location_poll() {
    let azure = AzureWorld::new("rgdel").await;
    azure.subscription.faults(json!({"operation_polls": 2})).await;
    let c = Client::new(&azure);
    c.put_rg("rg").await;
    let name = unique_registry_name("prefectdel");
    c.put_registry("rg", &name).await;
    let principal = c.put_identity("rg", "prefect-acr-identity").await.body["properties"]["principalId"].as_str().unwrap().to_owned();
    assert_eq!(c.put_assignment(&c.rg("rg"), &uuid_like(20), CONTRIBUTOR, &principal).await.status, 201);
    let deleting = c.arm(Method::DELETE, &c.rg("rg"), API_RESOURCES, None).await;
    assert_eq!(deleting.status, 202, "{}", deleting.body);
    let location = deleting.header("Location").expect("a Location to poll");
    assert_eq!(c.arm(Method::GET, &c.rg("rg"), API_RESOURCES, None).await.body["properties"]["provisioningState"], "Deleting");
    let poll = send(Method::GET, &location, Some(&c.arm), None).await;
    assert_eq!(poll.status, 200, "done at the second poll (the GET above counted as one)");
    assert_eq!(c.arm(Method::GET, &c.rg("rg"), API_RESOURCES, None).await.status, 404);
    assert!(azure.subscription.role_assignments().await.is_empty(), "role assignments at the group go with it");
    let path = format!("{}/providers/Microsoft.ContainerRegistry/checkNameAvailability", c.sub());
    let check = c.arm(Method::POST, &path, API_REGISTRY, Some(json!({"name": name, "type": "Microsoft.ContainerRegistry/registries"}))).await;
    assert_eq!(check.body["nameAvailable"], true, "the registry name is free again");
    assert!(!azure.tenant.state().await["servicePrincipals"].as_array().unwrap().iter().any(|s| s["id"] == principal.as_str()));
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_exchanges_an_arm_token_for_an_acr_refresh_token() {
    let azure = AzureWorld::new("acr").await;
    azure.subscription.faults(json!({"operation_polls": 0})).await;
    let c = Client::new(&azure);
    c.put_rg("rg").await;
    let name = unique_registry_name("prefectacr");
    assert_eq!(c.put_registry("rg", &name).await.status, 201);
    let url = azure.acr_exchange_url().replace("{registry}", &name);
    let service = format!("{name}.azurecr.io");
    let exchange = |token: String| {
        let (url, service, tenant) = (url.clone(), service.clone(), azure.tenant.id.clone());
        async move { post_form(&url, &[("grant_type", "access_token"), ("service", &service), ("tenant", &tenant), ("access_token", &token)]).await }
    };
    let ok = exchange(c.arm.clone()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let refresh = ok.body["refresh_token"].as_str().unwrap().to_owned();
    assert!(azure.tenant.minted().await.contains(&refresh), "a secret for the leak checks");
    let graph = exchange(c.graph.clone()).await;
    assert_eq!((graph.status, graph.body["errors"][0]["code"].as_str()), (401, Some("UNAUTHORIZED")));
    let by_login_server = post_form(
        &azure.acr_exchange_url().replace("{registry}", &service),
        &[("grant_type", "access_token"), ("service", &service), ("tenant", &azure.tenant.id), ("access_token", &c.arm)],
    )
    .await;
    assert_eq!(by_login_server.status, 200);
    let unknown = post_form(&azure.acr_exchange_url().replace("{registry}", "nosuchregistry"), &[("grant_type", "access_token")]).await;
    assert_eq!(unknown.status, 404);
    let calls = azure.subscription.calls().await;
    assert_eq!(calls.iter().filter(|c| c.service == "acr" && !c.write).count(), 3, "recorded on the registry's subscription, not as writes");
}

#[tokio::test]
async fn fake_counts_calls_per_subscription_and_tenant() {
    let azure = AzureWorld::new("calls").await;
    let c = Client::new(&azure);
    let marks = azure.marks().await;
    c.arm(Method::GET, &c.sub(), API_SUBSCRIPTIONS, None).await;
    c.put_rg("rg").await;
    c.put_identity("rg", "prefect-acr-identity").await;
    c.graph(Method::GET, "/applications?$filter=displayName%20eq%20'x'", None).await;
    c.app_with_principal("x").await;
    assert_eq!(
        azure.writes_since(&marks).await,
        [
            "arm Microsoft.Resources/subscriptions/resourceGroups/write",
            "arm Microsoft.ManagedIdentity/userAssignedIdentities/write",
            "graph applications.create",
            "graph servicePrincipals.create",
        ]
    );
    assert_eq!(azure.calls_since(&marks).await.len(), 6);
    azure.assert_others_untouched().await;
}

#[tokio::test]
async fn proxy_channel_in_front_of_the_fake_counts_azure_writes_and_injects_throttling() {
    let sandbox = Sandbox::get();
    let azure = AzureWorld::new("proxied").await.through_proxy(&sandbox, None).await;
    let c = Client::new(&azure);
    c.arm(Method::GET, &c.sub(), API_SUBSCRIPTIONS, None).await;
    assert_eq!(c.put_rg("rg").await.status, 201);
    let path = format!("{}/providers/Microsoft.ContainerRegistry/checkNameAvailability", c.sub());
    c.arm(Method::POST, &path, API_REGISTRY, Some(json!({"name": "prefectproxy1", "type": "Microsoft.ContainerRegistry/registries"}))).await;
    c.app_with_principal("proxied-app").await;
    let channel = azure.channel.as_ref().unwrap();
    let writes = channel.writes_since(0).await;
    let rg_path = format!("/arm{}", c.rg("rg"));
    assert_eq!(
        writes,
        [format!("azure.arm PUT {rg_path}"), "azure.graph POST /graph/v1.0/applications".to_owned(), "azure.graph POST /graph/v1.0/servicePrincipals".to_owned()]
    );
    channel.set_faults(json!({format!("PUT {rg_path}"): {"kind": "throttle", "times": 1}})).await;
    let throttled = c.put_rg("rg").await;
    assert_eq!((throttled.status, throttled.code()), (429, "SubscriptionRequestsThrottled"));
    assert_eq!(throttled.header("Retry-After").as_deref(), Some("1"));
    assert_eq!(c.put_rg("rg").await.status, 200);

    // A registry's operation URL names the channel: polls go through it too.
    azure.subscription.faults(json!({"operation_polls": 1})).await;
    let created = c.put_registry("rg", &unique_registry_name("prefectprx")).await;
    assert!(created.header("Azure-AsyncOperation").unwrap().starts_with(&channel.url()));
}

#[tokio::test]
async fn azure_world_writes_the_cli_files_and_the_fake_az_serves_tokens_per_audience() {
    let world = World::new("azenv").await;
    let azure = AzureWorld::with_subscriptions("azenv", 3, 1).await.with_default_location("westeurope");
    let command = world.azure_command(&azure, &["--version"]);
    let env: std::collections::HashMap<String, String> =
        command.get_envs().filter_map(|(k, v)| Some((k.to_string_lossy().into_owned(), v?.to_string_lossy().into_owned()))).collect();
    let dir = std::path::PathBuf::from(&env["AZURE_CONFIG_DIR"]);
    let raw = std::fs::read(dir.join("azureProfile.json")).unwrap();
    assert_eq!(&raw[..3], b"\xEF\xBB\xBF", "the CLI writes azureProfile.json with a UTF-8 BOM");
    let profile: Value = serde_json::from_slice(&raw[3..]).unwrap();
    let subs = profile["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 3);
    assert_eq!(subs.iter().map(|s| s["isDefault"].as_bool().unwrap()).collect::<Vec<_>>(), [false, true, false]);
    assert_eq!(subs[1]["id"], azure.subscription.id.as_str());
    assert!(subs.iter().all(|s| s["environmentName"] == CLOUD && s["tenantId"] == azure.tenant.id.as_str()));
    let config = std::fs::read_to_string(dir.join("config")).unwrap();
    assert!(config.contains(&format!("[cloud]\nname = {CLOUD}")) && config.contains("[defaults]\nlocation = westeurope"));
    let clouds = std::fs::read_to_string(dir.join("clouds.config")).unwrap();
    for line in [
        format!("[{CLOUD}]"),
        format!("endpoint_resource_manager = {}/arm/", azure.fake.url),
        format!("endpoint_active_directory_resource_id = {}/arm/", azure.fake.url),
        format!("endpoint_microsoft_graph_resource_id = {}/graph/", azure.fake.url),
        format!("endpoint_active_directory = {}/login", azure.fake.url),
        "suffix_acr_login_server_endpoint = .azurecr.io".to_owned(),
    ] {
        assert!(clouds.lines().any(|l| l == line), "{line} in\n{clouds}");
    }
    assert_eq!(env["PUSHPOOL_AZURE_ACR_EXCHANGE_URL"], format!("{}/acr/{{registry}}/oauth2/exchange", azure.fake.url));
    assert!(env["PATH"].split(':').next().unwrap().ends_with("tests/sandbox/bin"));
    assert!(env["PATH"].contains(fake_az_dir().to_str().unwrap()));
    let no_az = path_without_az(&[]);
    assert!(!std::env::split_paths(&no_az).any(|d| d.join("az").exists()), "no real az on {no_az}");

    // The fake az, run the way azure_identity's AzureCliCredential runs it.
    let az = |script: &str, extra: &[(&str, &str)]| {
        Command::new("/bin/sh")
            .args(["-c", &format!("cd /bin && {script}")])
            .env_clear()
            .env("PATH", &env["PATH"])
            .envs(azure.env())
            .envs(extra.iter().copied())
            .output()
            .unwrap()
    };
    let arm = az(&format!("az account get-access-token -o json --scope {}.default", azure.arm_url()), &[]);
    assert!(arm.status.success(), "{}", String::from_utf8_lossy(&arm.stderr));
    let arm: Value = serde_json::from_slice(&arm.stdout).unwrap();
    let token = arm["accessToken"].as_str().unwrap();
    assert!(token.starts_with(&format!("fake.arm.{}.", azure.tenant.id)), "{token}");
    assert_eq!((arm["subscription"].as_str(), arm["tokenType"].as_str()), (Some(azure.subscription.id.as_str()), Some("Bearer")));
    let expires = arm["expires_on"].as_i64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now + 3500..now + 3700).contains(&expires), "{expires}");
    assert!(arm["expiresOn"].as_str().unwrap().len() == 26, "local time with microseconds: {}", arm["expiresOn"]);
    let ok = send(Method::GET, &format!("{}subscriptions/{}?api-version={API_SUBSCRIPTIONS}", azure.arm_url(), azure.subscription.id), Some(token), None).await;
    assert_eq!(ok.status, 200, "the fake accepts the fake az's ARM token");
    let graph = az(&format!("az account get-access-token --output json --resource {}", azure.graph_url()), &[]);
    let graph: Value = serde_json::from_slice(&graph.stdout).unwrap();
    assert!(graph["accessToken"].as_str().unwrap().starts_with("fake.graph."));
    let public = az("az account get-access-token -o json --scope https://management.azure.com/.default", &[]);
    assert!(serde_json::from_slice::<Value>(&public.stdout).unwrap()["accessToken"].as_str().unwrap().starts_with("fake.foreign."));
    let other = az(&format!("az account get-access-token -o json --scope {}.default --subscription \"{}\"", azure.arm_url(), azure.subscriptions[2].id), &[]);
    assert_eq!(serde_json::from_slice::<Value>(&other.stdout).unwrap()["subscription"], azure.subscriptions[2].id.as_str());
    let show: Value = serde_json::from_slice(&az("az account show -o json", &[]).stdout).unwrap();
    assert_eq!((show["id"].as_str(), show["isDefault"].as_bool()), (Some(azure.subscription.id.as_str()), Some(true)));

    let refused = az("az account get-access-token -o json --scope x/.default", &[("FAKE_AZ_REFUSE", "1")]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Please run 'az login' to setup account."));
    let logs = azure.az_calls();
    assert_eq!(logs[0]["argv"], json!(["account", "get-access-token", "-o", "json", "--scope", format!("{}.default", azure.arm_url())]));
    assert_eq!(azure.az_tokens().len(), 4, "every printed token is known to the leak check");
    assert!(azure.secrets().contains(&token.to_owned()));

    let logged_out = AzureWorld::new("azenv2").await.logged_out();
    let out = Command::new(fake_az_dir().join("az")).args(["account", "show"]).env_clear().env("PATH", &env["PATH"]).envs(logged_out.env()).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("az login"));
}

#[tokio::test]
async fn prefect_azure_loads_an_aci_credentials_block_and_its_secret_logs_in() {
    let world = World::new("aciblock").await;
    let azure = AzureWorld::new("aciblock").await;
    let app = azure.tenant.seed_application("prefect-aci-push-pool-app", &["managed-by=pushpool"], 1, true).await;
    let block_type = world.prefect_get("/block_types/slug/azure-container-instance-credentials").await.expect("the server knows the block type");
    let response = http()
        .post(format!("{}/block_schemas/filter", world.sandbox.prefect))
        .json(&json!({"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}, "limit": 1}))
        .send()
        .await
        .unwrap();
    let schemas: Vec<Value> = response.json().await.unwrap();
    let name = format!("{}-push-pool-credentials", world.pool);
    let data = json!({"client_id": app.app_id, "tenant_id": azure.tenant.id, "client_secret": app.secrets[0].1});
    let document = json!({"name": name, "block_type_id": block_type["id"], "block_schema_id": schemas[0]["id"], "data": data});
    assert_eq!(world.prefect_send(Method::POST, "/block_documents/", document).await, 201);
    let fake = AzureFake::get();
    let loaded = world.load_aci_credentials_with_prefect(&name, Some((&fake, &azure.tenant)));
    assert_eq!(loaded["client_id"], app.app_id.as_str());
    assert_eq!(loaded["tenant_id"], azure.tenant.id.as_str());
    assert_eq!((loaded["secret_length"].as_u64(), loaded["login_status"].as_u64()), (Some(40), Some(200)));
    azure.tenant.expire_secret(&app.id, &app.secrets[0].0).await;
    let loaded = world.load_aci_credentials_with_prefect(&name, Some((&fake, &azure.tenant)));
    assert_eq!(loaded["login_status"], 401, "a dead secret is what pushpool must replace");
    assert!(world.azure_block().await.is_some());
    assert!(world.azure_secrets(&azure).contains(&app.secrets[0].1), "the block's secret is a secret");
}

/// Every page of a list, following `next` (the continuation member) from `first`; the pages' items, by page.
async fn pages(first: Answer, token: &str, next: &str) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut page = first;
    loop {
        assert_eq!(page.status, 200, "{}", page.body);
        out.push(page.body["value"].as_array().unwrap().clone());
        let Some(link) = page.body[next].as_str().map(str::to_owned) else { return out };
        assert!(out.len() < 50, "the continuation never ends");
        page = send(Method::GET, &link, Some(token), None).await;
    }
}

#[tokio::test]
async fn fake_pages_arm_lists_by_two_with_absolute_next_links_and_opaque_skiptokens() {
    let azure = AzureWorld::new("armpage").await;
    let c = Client::new(&azure);
    c.put_rg("rg").await;
    let mut seeded: Vec<String> = Vec::new();
    for i in 0..5 {
        let name = unique_registry_name(&format!("prefectpage{i}"));
        azure.subscription.seed_registry("rg", &name, &[]).await;
        seeded.push(name);
    }
    let list = format!("{}/providers/Microsoft.ContainerRegistry/registries", c.rg("rg"));
    let first = c.arm(Method::GET, &list, API_REGISTRY, None).await;
    let link = first.body["nextLink"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}subscriptions/", azure.arm_url())), "absolute: {link}");
    assert!(link.contains(&format!("api-version={API_REGISTRY}")) && link.contains("$skiptoken="), "the original query and a token: {link}");
    let registries = pages(first, &c.arm, "nextLink").await;
    assert_eq!(registries.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    let names: Vec<String> = registries.concat().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, seeded);

    // A token is opaque and belongs to its query: a forged one, or one moved to another list, is refused.
    let forged = c.arm(Method::GET, &format!("{list}?$skiptoken=2"), API_REGISTRY, None).await;
    assert_eq!((forged.status, forged.code()), (400, "InvalidSkipToken"), "{}", forged.body);
    let token = link.split("$skiptoken=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    c.put_rg("rg2").await;
    let moved = c.arm(Method::GET, &format!("{}/providers/Microsoft.ContainerRegistry/registries?$skiptoken={token}", c.rg("rg2")), API_REGISTRY, None).await;
    assert_eq!(moved.status, 400, "{}", moved.body);

    // A filtered list of role assignments keeps its filter in the next link.
    let principal = "ce2ce14e-85d7-4629-bdbc-454d0519d987";
    for registry in &seeded {
        azure
            .subscription
            .seed_role_assignment(&format!("{}/providers/Microsoft.ContainerRegistry/registries/{registry}", azure.subscription.rg_scope("rg")), ACR_PULL, principal, None)
            .await;
    }
    let filter = format!("{}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20'{principal}'", c.rg("rg"));
    let first = c.arm(Method::GET, &filter, API_AUTHORIZATION, None).await;
    assert!(first.body["nextLink"].as_str().unwrap().contains("$filter=principalId%20eq%20'"), "{}", first.body);
    assert_eq!(pages(first, &c.arm, "nextLink").await.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);

    // The page size is the test's to change.
    azure.subscription.faults(json!({"page_size": 10})).await;
    let whole = c.arm(Method::GET, &list, API_REGISTRY, None).await;
    assert_eq!((whole.body["value"].as_array().unwrap().len(), whole.body.get("nextLink")), (5, None));
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_pages_graph_collections_and_a_filtered_page_may_be_short_or_empty_with_a_next_link() {
    let azure = AzureWorld::new("graphpage").await;
    let c = Client::new(&azure);
    for i in 0..5 {
        azure.tenant.seed_application(&format!("someone else's app {i}"), &[], 0, true).await;
    }
    let (_, app_id) = c.app_with_principal("prefect-aci-push-pool-app").await;

    let first = c.graph(Method::GET, "/applications", None).await;
    let link = first.body["@odata.nextLink"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}v1.0/applications?", azure.graph_url())) && link.contains("$skiptoken="), "absolute: {link}");
    assert_eq!(pages(first, &c.graph, "@odata.nextLink").await.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 2]);
    let top = c.graph(Method::GET, "/applications?$top=4", None).await;
    assert_eq!(pages(top, &c.graph, "@odata.nextLink").await.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2], "$top sets the page size");
    let too_big = c.graph(Method::GET, "/applications?$top=1000", None).await;
    assert_eq!((too_big.status, too_big.code()), (400, "Request_UnsupportedQuery"), "Graph's maximum is 999");

    // Filtered: the first pages are empty but link on; the match is on the last.
    let filtered = c.graph(Method::GET, "/applications?$filter=displayName%20eq%20'prefect-aci-push-pool-app'", None).await;
    assert_eq!(filtered.body["value"], json!([]), "{}", filtered.body);
    assert!(filtered.body["@odata.nextLink"].as_str().unwrap().contains("$filter=displayName%20eq%20'prefect-aci-push-pool-app'"), "{}", filtered.body);
    let names: Vec<Vec<Value>> = pages(filtered, &c.graph, "@odata.nextLink").await;
    assert_eq!(names.iter().map(Vec::len).collect::<Vec<_>>(), [0, 0, 1]);
    assert_eq!(names[2][0]["displayName"], "prefect-aci-push-pool-app");
    let sp = c.graph(Method::GET, &format!("/servicePrincipals?$filter=appId%20eq%20'{app_id}'"), None).await;
    assert_eq!(pages(sp, &c.graph, "@odata.nextLink").await.concat().len(), 1, "the service principal, on a later page");

    let forged = c.graph(Method::GET, "/applications?$skiptoken=X'00'", None).await;
    assert_eq!((forged.status, forged.code()), (400, "Request_BadRequest"), "{}", forged.body);
    azure.tenant.faults(json!({"page_size": 10})).await;
    let whole = c.graph(Method::GET, "/applications", None).await;
    assert_eq!((whole.body["value"].as_array().unwrap().len(), whole.body.get("@odata.nextLink")), (6, None));
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn fake_answers_graphs_replication_errors_for_objects_just_created_then_settles() {
    let azure = AzureWorld::new("lag").await;
    let c = Client::new(&azure);
    azure.tenant.faults(json!({"app_not_replicated": 2, "object_not_found": 2})).await;
    let app = c.graph(Method::POST, "/applications", Some(json!({"displayName": "prefect-aci-push-pool-app"}))).await;
    assert_eq!(app.status, 201, "{}", app.body);
    let (id, app_id) = (app.body["id"].as_str().unwrap().to_owned(), app.body["appId"].as_str().unwrap().to_owned());

    for _ in 0..2 {
        let early = c.graph(Method::POST, "/servicePrincipals", Some(json!({"appId": app_id}))).await;
        assert_eq!((early.status, early.code()), (400, "Request_BadRequest"), "{}", early.body);
        assert_eq!(early.message(), format!("The appId '{app_id}' of the service principal does not reference a valid application object."));
    }
    let sp = c.graph(Method::POST, "/servicePrincipals", Some(json!({"appId": app_id}))).await;
    assert_eq!(sp.status, 201, "{}", sp.body);

    let add = json!({"passwordCredential": {"displayName": "pushpool"}});
    let read = c.graph(Method::GET, &format!("/applications/{id}"), None).await;
    assert_eq!((read.status, read.code()), (404, "Request_ResourceNotFound"), "{}", read.body);
    let early = c.graph(Method::POST, &format!("/applications/{id}/addPassword"), Some(add.clone())).await;
    assert_eq!((early.status, early.code()), (404, "Request_ResourceNotFound"), "every request naming it, until replicated");
    assert_eq!(c.graph(Method::POST, &format!("/applications/{id}/addPassword"), Some(add)).await.status, 200);
    let sp_id = sp.body["id"].as_str().unwrap();
    for expected in [404, 404, 200] {
        assert_eq!(c.graph(Method::GET, &format!("/servicePrincipals/{sp_id}"), None).await.status, expected);
    }

    // Objects that existed before, and objects made with the faults cleared, answer at once.
    let seeded = azure.tenant.seed_application("seeded", &[], 0, false).await;
    assert_eq!(c.graph(Method::GET, &format!("/applications/{}", seeded.id), None).await.status, 200);
    azure.tenant.faults(json!({})).await;
    c.app_with_principal("prompt").await;
    azure.fake.assert_no_violations(&azure).await;
}
