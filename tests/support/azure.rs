//! Azure test support: the Azure fake that `scripts/sandbox.sh` starts (`tests/sandbox/azure_fake.py`,
//! one listener on 127.0.0.1 for ARM, Microsoft Graph, the Entra token endpoint and ACR's token
//! exchange), the fake `az` (`tests/sandbox/az-bin/az`), one isolated tenant and its subscriptions
//! per test, and the Azure CLI files that point pushpool at the fake.
//!
//! What tests built on this prove: the wire contract (every ARM body pushpool sends and every answer
//! the fake gives is checked against the official examples, every Graph body against the Graph CSDL
//! subset; see [`AzureFake::violations`]) and pushpool's handling of Azure's documented semantics, as
//! the fake models them. Not the live cloud.
//!
//! How pushpool finds the fake: exactly as it would find a sovereign cloud. [`AzureWorld::env`] sets
//! `AZURE_CONFIG_DIR` to a directory holding what the Azure CLI writes: `azureProfile.json` (UTF-8
//! with a BOM; several subscriptions, the default not the first), `config` (`[cloud] name =
//! PushpoolFake`) and `clouds.config` registering that cloud with `endpoint_resource_manager` and
//! `endpoint_active_directory_resource_id` = `<fake>/arm/`, `endpoint_microsoft_graph_resource_id` =
//! `<fake>/graph/` (pushpool appends `v1.0/...`), `endpoint_active_directory` = `<fake>/login` (the
//! client-credentials endpoint is `<that>/<tenant>/oauth2/v2.0/token`) and
//! `suffix_acr_login_server_endpoint` = `.azurecr.io`. A registry's login server cannot resolve to
//! 127.0.0.1, so ACR's token exchange has its own override, `PUSHPOOL_AZURE_ACR_EXCHANGE_URL`
//! (`<fake>/acr/{registry}/oauth2/exchange`; the real one is `https://<loginServer>/oauth2/exchange`).
//! Tokens come from the fake `az` first on PATH (`az account get-access-token -o json --scope
//! <resource>/.default`, as azure_identity's `AzureCliCredential` runs it).
//!
//! ```ignore
//! let world = World::new("aci").await;
//! let azure = AzureWorld::new("aci").await;                 // a tenant, two subscriptions, the second default
//! let marks = azure.marks().await;
//! let run = world.run_azure(&azure, &["work-pool", "create", &world.pool, "--type", "azure-container-instance:push", "--provision-infra", "--yes"]);
//! assert!(azure.writes_since(&marks).await.contains(&"arm Microsoft.Resources/subscriptions/resourceGroups/write".to_owned()));
//! azure.assert_others_untouched().await;                   // never "the first subscription"
//! azure.fake.assert_no_violations(&azure).await;
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Channel, Run, Sandbox, World, http, unique};

/// Contributor, the role pushpool grants the app's service principal on the resource group.
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
/// AcrPull, the role pushpool grants the identity on the registry.
pub const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
/// The name of the custom Azure CLI cloud that points at the fake.
pub const CLOUD: &str = "PushpoolFake";
/// The api-versions the fake pins (the official examples' where one exists).
pub const API_SUBSCRIPTIONS: &str = "2022-12-01";
pub const API_RESOURCES: &str = "2021-04-01";
pub const API_REGISTRY: &str = "2023-07-01";
pub const API_IDENTITY: &str = "2023-01-31";
pub const API_AUTHORIZATION: &str = "2022-04-01";

/// The sandbox's Azure fake.
#[derive(Debug, Clone)]
pub struct AzureFake {
    pub url: String,
}

impl AzureFake {
    /// The fake, or a panic that says how to start it.
    pub fn get() -> Self {
        let url = std::env::var("PUSHPOOL_SANDBOX_AZURE_URL").unwrap_or_else(|_| {
            panic!("PUSHPOOL_SANDBOX_AZURE_URL is not set: these tests need the sandbox's Azure fake. Run them with `scripts/test.sh`, or `scripts/sandbox.sh up && eval \"$(scripts/sandbox.sh env)\"` first.")
        });
        Self { url }
    }

    /// A fresh tenant (a random id and `pushpool<id>.onmicrosoft.com`).
    pub async fn tenant(&self) -> AzureTenant {
        let body: Value = admin(reqwest::Method::POST, &format!("{}/admin/tenants", self.url), json!({})).await;
        AzureTenant { fake: self.url.clone(), id: body["tenantId"].as_str().unwrap().to_owned() }
    }

    /// A fresh subscription named `display_name` in `tenant`.
    pub async fn subscription(&self, tenant: &AzureTenant, display_name: &str) -> AzureSubscription {
        let body: Value = admin(reqwest::Method::POST, &format!("{}/admin/subscriptions", self.url), json!({"displayName": display_name, "tenantId": tenant.id})).await;
        AzureSubscription { fake: self.url.clone(), id: body["subscriptionId"].as_str().unwrap().to_owned(), name: display_name.to_owned(), tenant_id: tenant.id.clone() }
    }

    /// Every contract violation the fake has seen (all tests): requests it rejected with
    /// "fake contract: ..." and answers of its own that did not fit the examples or the CSDL.
    pub async fn violations(&self) -> Vec<Value> {
        http().get(format!("{}/admin/violations", self.url)).send().await.unwrap().json().await.unwrap()
    }

    /// The violations that concern `azure`'s tenant or any of its subscriptions.
    pub async fn violations_of(&self, azure: &AzureWorld) -> Vec<Value> {
        let mut owners: Vec<String> = azure.subscriptions.iter().map(|s| s.id.clone()).collect();
        owners.push(azure.tenant.id.clone());
        self.violations().await.into_iter().filter(|v| v["owner"].as_str().is_some_and(|o| owners.iter().any(|x| x == o))).collect()
    }

    /// Asserts that nothing sent to or answered by the fake about `azure` broke the contract.
    pub async fn assert_no_violations(&self, azure: &AzureWorld) {
        let violations = self.violations_of(azure).await;
        assert!(violations.is_empty(), "Azure contract violations:\n{}", serde_json::to_string_pretty(&violations).unwrap());
    }
}

async fn admin<T: serde::de::DeserializeOwned>(method: reqwest::Method, url: &str, body: Value) -> T {
    let response = http().request(method, url).json(&body).send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{url}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

/// One call the fake saw for a subscription or tenant.
#[derive(Debug, Clone, Deserialize)]
pub struct AzureCall {
    /// "arm", "graph", "login" or "acr".
    pub service: String,
    /// The HTTP verb.
    pub method: String,
    pub path: String,
    /// ARM: the operation's authorization action (`Microsoft.ContainerRegistry/registries/write`);
    /// Graph: `applications.addPassword` and the like; "VERB /path" when nothing matched.
    pub action: String,
    pub write: bool,
    pub status: u16,
}

impl AzureCall {
    /// "service action", as [`AzureWorld::writes_since`] lists them.
    pub fn name(&self) -> String {
        format!("{} {}", self.service, self.action)
    }
}

/// A tenant (directory) of the fake: applications, service principals, Graph and login calls.
#[derive(Debug, Clone)]
pub struct AzureTenant {
    pub fake: String,
    pub id: String,
}

/// An application seeded straight into a tenant, with the texts of its secrets.
#[derive(Debug, Clone)]
pub struct SeededApp {
    /// The object id (Graph's `id`).
    pub id: String,
    pub app_id: String,
    /// (keyId, secretText), oldest first.
    pub secrets: Vec<(String, String)>,
    pub service_principal_id: Option<String>,
}

impl AzureTenant {
    fn admin_url(&self, path: &str) -> String {
        format!("{}/admin/tenants/{}{path}", self.fake, self.id)
    }

    pub async fn state(&self) -> Value {
        http().get(self.admin_url("/state")).send().await.unwrap().json().await.unwrap()
    }

    /// Graph and token-endpoint calls whose token (or path) named this tenant.
    pub async fn calls(&self) -> Vec<AzureCall> {
        http().get(self.admin_url("/calls")).send().await.unwrap().json().await.unwrap()
    }

    /// Replaces the tenant's faults (`{}` clears): `principal_not_found` K, `throttle`
    /// {"<regex over the action>": N}, `retry_after` S, `secret_limit` N, `page_size` N (Graph
    /// lists without `$top`; default 2), `app_not_replicated` K (each application created through
    /// Graph from now on is unknown to the next K service principal creates naming its appId: 400
    /// "does not reference a valid application object"), `object_not_found` K (each application
    /// and service principal created through Graph from now on answers the next K requests naming
    /// its id 404 `Request_ResourceNotFound`).
    pub async fn faults(&self, faults: Value) {
        let _: Value = admin(reqwest::Method::PUT, &self.admin_url("/faults"), faults).await;
    }

    /// An application (and, with `service_principal`, its service principal) with `secrets` live
    /// client secrets, made without any Graph call.
    pub async fn seed_application(&self, display_name: &str, tags: &[&str], secrets: usize, service_principal: bool) -> SeededApp {
        let body = json!({"displayName": display_name, "tags": tags, "secrets": secrets, "servicePrincipal": service_principal});
        let out: Value = admin(reqwest::Method::POST, &self.admin_url("/applications"), body).await;
        let secrets = out["secrets"].as_array().unwrap().iter().map(|s| (s["keyId"].as_str().unwrap().to_owned(), s["secretText"].as_str().unwrap().to_owned())).collect();
        SeededApp {
            id: out["id"].as_str().unwrap().to_owned(),
            app_id: out["appId"].as_str().unwrap().to_owned(),
            secrets,
            service_principal_id: out["servicePrincipalId"].as_str().map(str::to_owned),
        }
    }

    /// Moves a secret's endDateTime to yesterday: the token endpoint refuses it from now on.
    pub async fn expire_secret(&self, app_object_id: &str, key_id: &str) {
        let _: Value = admin(reqwest::Method::POST, &self.admin_url(&format!("/applications/{app_object_id}/secrets/{key_id}/expire")), json!({})).await;
    }

    /// Removes a secret without any Graph call (someone deleted it in the portal).
    pub async fn remove_secret(&self, app_object_id: &str, key_id: &str) {
        let _: Value = admin(reqwest::Method::DELETE, &self.admin_url(&format!("/applications/{app_object_id}/secrets/{key_id}")), json!({})).await;
    }

    /// The applications called `display_name`, as the admin state shows them (secrets by keyId,
    /// hint, endDateTime and whether they are live; never their text).
    pub async fn applications_named(&self, display_name: &str) -> Vec<Value> {
        let state = self.state().await;
        state["applications"].as_array().cloned().unwrap_or_default().into_iter().filter(|a| a["displayName"] == display_name).collect()
    }

    /// Every secret text, access token and ACR refresh token the fake issued in this tenant.
    pub async fn minted(&self) -> Vec<String> {
        http().get(self.admin_url("/minted")).send().await.unwrap().json().await.unwrap()
    }

    /// The HTTP status of a client-credentials grant for `client_id` / `secret` against the fake's
    /// token endpoint (200 only for a live secret of an application with a service principal).
    pub async fn login_status(&self, client_id: &str, secret: &str) -> u16 {
        let scope = format!("{}/arm/.default", self.fake);
        let form = [("client_id", client_id), ("client_secret", secret), ("scope", scope.as_str()), ("grant_type", "client_credentials")];
        let request = http().post(format!("{}/login/{}/oauth2/v2.0/token", self.fake, self.id));
        let response = request.header("Content-Type", "application/x-www-form-urlencoded").body(form_body(&form)).send().await.unwrap();
        response.status().as_u16()
    }
}

/// A subscription of the fake: resource groups, registries, identities, role assignments.
#[derive(Debug, Clone)]
pub struct AzureSubscription {
    pub fake: String,
    pub id: String,
    pub name: String,
    pub tenant_id: String,
}

impl AzureSubscription {
    fn admin_url(&self, path: &str) -> String {
        format!("{}/admin/subscriptions/{}{path}", self.fake, self.id)
    }

    pub async fn state(&self) -> Value {
        http().get(self.admin_url("/state")).send().await.unwrap().json().await.unwrap()
    }

    /// ARM and ACR-exchange calls about this subscription.
    pub async fn calls(&self) -> Vec<AzureCall> {
        http().get(self.admin_url("/calls")).send().await.unwrap().json().await.unwrap()
    }

    /// Replaces the subscription's faults (`{}` clears): `operation_polls` N (default 2: a new
    /// registry's operation is done at the 2nd poll), `throttle` {"<regex over the action>": N},
    /// `retry_after` S (default 1), `poll_retry_after` S, `principal_not_found` K (its tenant's),
    /// `page_size` N (ARM lists; default 2).
    pub async fn faults(&self, faults: Value) {
        let _: Value = admin(reqwest::Method::PUT, &self.admin_url("/faults"), faults).await;
    }

    pub async fn seed_resource_group(&self, name: &str, location: &str, tags: &[(&str, &str)]) {
        let tags: serde_json::Map<String, Value> = tags.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let _: Value = admin(reqwest::Method::POST, &self.admin_url("/resourceGroups"), json!({"name": name, "location": location, "tags": tags})).await;
    }

    /// A Basic registry, provisioned (Succeeded), in an existing resource group; returns its ARM id.
    pub async fn seed_registry(&self, rg: &str, name: &str, tags: &[(&str, &str)]) -> String {
        let tags: serde_json::Map<String, Value> = tags.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        let out: Value = admin(reqwest::Method::POST, &self.admin_url(&format!("/resourceGroups/{rg}/registries")), json!({"name": name, "tags": tags})).await;
        out["id"].as_str().unwrap().to_owned()
    }

    /// Pushes `count` images of `bytes` in all into a registry (listUsages' Size grows).
    pub async fn seed_images(&self, rg: &str, registry: &str, count: usize, bytes: u64) {
        let _: Value =
            admin(reqwest::Method::POST, &self.admin_url(&format!("/resourceGroups/{rg}/registries/{registry}/images")), json!({"count": count, "bytes": bytes})).await;
    }

    /// A user-assigned identity (its service principal replicated already); returns its ARM JSON.
    pub async fn seed_identity(&self, rg: &str, name: &str, tags: &[(&str, &str)]) -> Value {
        let tags: serde_json::Map<String, Value> = tags.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
        admin(reqwest::Method::POST, &self.admin_url(&format!("/resourceGroups/{rg}/identities")), json!({"name": name, "tags": tags})).await
    }

    /// A role assignment (role: a role definition GUID such as [`CONTRIBUTOR`]) named `name`, or a random GUID.
    pub async fn seed_role_assignment(&self, scope: &str, role: &str, principal_id: &str, name: Option<&str>) -> Value {
        let body = json!({"scope": scope, "roleDefinitionId": role, "principalId": principal_id, "name": name});
        admin(reqwest::Method::POST, &self.admin_url("/roleAssignments"), body).await
    }

    /// `/subscriptions/<id>/resourceGroups/<rg>`.
    pub fn rg_scope(&self, rg: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{rg}", self.id)
    }

    /// A resource group as the admin state shows it (with its registries and identities), or None.
    pub async fn resource_group(&self, name: &str) -> Option<Value> {
        let state = self.state().await;
        state["resourceGroups"].as_array().cloned().unwrap_or_default().into_iter().find(|g| g["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }

    /// Every role assignment in the subscription: {"id", "name", "scope", "roleDefinitionId", "principalId", "principalType"}.
    pub async fn role_assignments(&self) -> Vec<Value> {
        self.state().await["roleAssignments"].as_array().cloned().unwrap_or_default()
    }
}

/// Marks on an [`AzureWorld`]'s call logs (default subscription and tenant); the default is
/// the start of the logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct AzureMarks {
    pub subscription: usize,
    pub tenant: usize,
}

/// A test's Azure side: a tenant, its subscriptions (in the profile's order, the default not the
/// first unless asked), the Azure CLI directory, and the base URL the cloud points at (the fake, or
/// a proxy channel in front of it). Its files live in a directory of its own, outside the
/// [`World`]'s home, so that the fake az's log (which names the tokens it printed) does not trip the
/// world's secret-leak scan of the home.
pub struct AzureWorld {
    pub fake: AzureFake,
    pub tenant: AzureTenant,
    /// The subscription marked default in azureProfile.json: the one pushpool must use.
    pub subscription: AzureSubscription,
    /// Every subscription of the profile, in its order.
    pub subscriptions: Vec<AzureSubscription>,
    pub dir: tempfile::TempDir,
    /// A proxy channel in front of the fake, when [`AzureWorld::through_proxy`] was used.
    pub channel: Option<Channel>,
    az: bool,
    refuse: bool,
    logged_in: bool,
    default_location: Option<String>,
}

impl AzureWorld {
    /// A fresh tenant with two subscriptions: `<prefix>-other` first in the profile, and
    /// `<prefix>`, second and the default. Whatever pushpool touches in the first is a bug.
    pub async fn new(prefix: &str) -> Self {
        Self::with_subscriptions(prefix, 2, 1).await
    }

    /// A fresh tenant with `count` subscriptions, the `default`-th (0-based) marked default.
    pub async fn with_subscriptions(prefix: &str, count: usize, default: usize) -> Self {
        assert!(default < count);
        let fake = AzureFake::get();
        let tenant = fake.tenant().await;
        let mut subscriptions = Vec::new();
        for i in 0..count {
            let name = if i == default { unique(prefix) } else { unique(&format!("{prefix}-other{i}")) };
            subscriptions.push(fake.subscription(&tenant, &name).await);
        }
        let subscription = subscriptions[default].clone();
        let world = Self {
            fake,
            tenant,
            subscription,
            subscriptions,
            dir: tempfile::tempdir().unwrap(),
            channel: None,
            az: true,
            refuse: false,
            logged_in: true,
            default_location: None,
        };
        world.write_cli_files();
        world
    }

    /// Sends pushpool's Azure traffic through a proxy channel (in `group`, for the kill-after-k-writes
    /// hold of [`super::hold_group_after`]): the cloud's endpoints then name the channel. The
    /// channel's calls are classified `azure.arm`, `azure.graph`, `azure.login` and `azure.acr`.
    pub async fn through_proxy(mut self, sandbox: &Sandbox, group: Option<&str>) -> Self {
        self.channel = Some(Channel::open_in(sandbox, &self.fake.url, group).await);
        self.write_cli_files();
        self
    }

    /// Points the CLI files at the fake itself again, after [`AzureWorld::through_proxy`].
    pub fn drop_proxy(&mut self) {
        self.channel = None;
        self.write_cli_files();
    }

    /// No fake `az` on PATH (and no real one either): no Azure CLI at all.
    pub fn without_az(mut self) -> Self {
        self.az = false;
        self
    }

    /// The fake az refuses every command with "Please run 'az login' to setup account." (exit 1).
    pub fn refusing(mut self) -> Self {
        self.refuse = true;
        self
    }

    /// azureProfile.json lists no subscription (nobody ran `az login`).
    pub fn logged_out(mut self) -> Self {
        self.logged_in = false;
        self.write_cli_files();
        self
    }

    /// The Azure CLI's configured default location (`[defaults] location` in `config`).
    pub fn with_default_location(mut self, location: &str) -> Self {
        self.default_location = Some(location.to_owned());
        self.write_cli_files();
        self
    }

    /// The base URL the cloud's endpoints point at.
    pub fn endpoint(&self) -> String {
        self.channel.as_ref().map(Channel::url).unwrap_or_else(|| self.fake.url.clone())
    }

    /// `endpoint_resource_manager` (and the ARM token audience): `<endpoint>/arm/`.
    pub fn arm_url(&self) -> String {
        format!("{}/arm/", self.endpoint())
    }

    /// `endpoint_microsoft_graph_resource_id`: `<endpoint>/graph/` (calls go to `<that>v1.0/...`).
    pub fn graph_url(&self) -> String {
        format!("{}/graph/", self.endpoint())
    }

    /// `endpoint_active_directory`: `<endpoint>/login` (no trailing slash, like the CLI's own clouds).
    pub fn login_url(&self) -> String {
        format!("{}/login", self.endpoint())
    }

    /// `PUSHPOOL_AZURE_ACR_EXCHANGE_URL`: ACR's token exchange, `{registry}` standing for the registry's name.
    pub fn acr_exchange_url(&self) -> String {
        format!("{}/acr/{{registry}}/oauth2/exchange", self.endpoint())
    }

    /// AZURE_CONFIG_DIR.
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("azure")
    }

    /// Writes azureProfile.json (with the BOM the CLI writes), config and clouds.config.
    pub fn write_cli_files(&self) {
        let dir = self.config_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let subscriptions: Vec<Value> = if self.logged_in {
            self.subscriptions
                .iter()
                .map(|s| {
                    json!({
                        "environmentName": CLOUD,
                        "homeTenantId": s.tenant_id,
                        "id": s.id,
                        "isDefault": s.id == self.subscription.id,
                        "managedByTenants": [],
                        "name": s.name,
                        "state": "Enabled",
                        "tenantDefaultDomain": format!("pushpool{}.onmicrosoft.com", &s.tenant_id[..8]),
                        "tenantDisplayName": "Pushpool Tests",
                        "tenantId": s.tenant_id,
                        "user": {"name": "tester@example.com", "type": "user"},
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let profile = json!({"installationId": "00000000-0000-0000-0000-0000000000aa", "subscriptions": subscriptions});
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(serde_json::to_string_pretty(&profile).unwrap().as_bytes());
        std::fs::write(dir.join("azureProfile.json"), bytes).unwrap();
        let mut config = format!("[cloud]\nname = {CLOUD}\n\n");
        if let Some(location) = &self.default_location {
            config.push_str(&format!("[defaults]\nlocation = {location}\n\n"));
        }
        std::fs::write(dir.join("config"), config).unwrap();
        // As `az cloud register` writes it (configparser: "key = value" under [<cloud>]).
        let arm = self.arm_url();
        let clouds = format!(
            "[{CLOUD}]\nprofile = latest\nendpoint_management = {arm}\nendpoint_resource_manager = {arm}\nendpoint_active_directory = {login}\nendpoint_active_directory_resource_id = {arm}\nendpoint_active_directory_graph_resource_id = {graph}\nendpoint_microsoft_graph_resource_id = {graph}\nsuffix_acr_login_server_endpoint = .azurecr.io\nsuffix_storage_endpoint = core.windows.net\nsuffix_keyvault_dns = .vault.azure.net\n\n",
            login = self.login_url(),
            graph = self.graph_url(),
        );
        std::fs::write(dir.join("clouds.config"), clouds).unwrap();
    }

    /// The fake az's log: one JSON object {"argv": [...], "token"?: "..."} per invocation.
    pub fn az_log(&self) -> PathBuf {
        self.dir.path().join("az.log")
    }

    pub fn az_calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.az_log()).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// Every token the fake az printed.
    pub fn az_tokens(&self) -> Vec<String> {
        self.az_calls().iter().filter_map(|c| c["token"].as_str().map(str::to_owned)).collect()
    }

    /// The environment that points pushpool at the fake: AZURE_CONFIG_DIR (profile and custom
    /// cloud), the ACR exchange override, the fake az's log and refusal switch.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AZURE_CONFIG_DIR".to_owned(), self.config_dir().display().to_string()),
            ("PUSHPOOL_AZURE_ACR_EXCHANGE_URL".to_owned(), self.acr_exchange_url()),
            ("FAKE_AZ_LOG".to_owned(), self.az_log().display().to_string()),
        ];
        if self.refuse {
            env.push(("FAKE_AZ_REFUSE".to_owned(), "1".to_owned()));
        }
        env
    }

    /// A token as the fake az prints it, for tests that drive the fake directly: `audience` is
    /// "arm" or "graph" (anything else is refused by both), for this world's tenant.
    pub fn token(&self, audience: &str) -> String {
        format!("fake.{audience}.{}.{}", self.tenant.id, unique("tok").replace('-', "_"))
    }

    /// Marks on the default subscription's and the tenant's call logs.
    pub async fn marks(&self) -> AzureMarks {
        AzureMarks { subscription: self.subscription.calls().await.len(), tenant: self.tenant.calls().await.len() }
    }

    /// The write calls since `marks`, ARM's then Graph's, as "service action"
    /// (`arm Microsoft.ContainerRegistry/registries/write`, `graph applications.addPassword`).
    pub async fn writes_since(&self, marks: &AzureMarks) -> Vec<String> {
        let arm = self.subscription.calls().await.into_iter().skip(marks.subscription);
        let graph = self.tenant.calls().await.into_iter().skip(marks.tenant);
        arm.chain(graph).filter(|c| c.write).map(|c| c.name()).collect()
    }

    /// Every call since `marks` (reads too), as "service action status".
    pub async fn calls_since(&self, marks: &AzureMarks) -> Vec<AzureCall> {
        let arm = self.subscription.calls().await.into_iter().skip(marks.subscription);
        let graph = self.tenant.calls().await.into_iter().skip(marks.tenant);
        arm.chain(graph).collect()
    }

    /// Asserts that no subscription but the default one saw a single call.
    pub async fn assert_others_untouched(&self) {
        for other in self.subscriptions.iter().filter(|s| s.id != self.subscription.id) {
            let calls = other.calls().await;
            assert!(calls.is_empty(), "subscription {} ({}) is not the default but saw {:?}", other.name, other.id, calls.iter().map(AzureCall::name).collect::<Vec<_>>());
        }
    }

    /// This Azure side's secrets: every token the fake az printed and everything the fake minted in
    /// the tenant (client secrets, access tokens, ACR refresh tokens). Read synchronously.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = self.az_tokens();
        let minted = blocking_get(&format!("{}/admin/tenants/{}/minted", self.fake.url, self.tenant.id));
        secrets.extend(minted.as_array().cloned().unwrap_or_default().into_iter().filter_map(|v| v.as_str().map(str::to_owned)));
        secrets
    }
}

/// A GET of a JSON document from synchronous code (a plain HTTP/1.0 exchange on a loopback socket),
/// so that [`World::run_azure`] can collect secrets without an async runtime.
fn blocking_get(url: &str) -> Value {
    use std::io::{Read, Write};
    let address = url.trim_start_matches("http://");
    let (host, path) = address.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((address, "/".to_owned()));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    serde_json::from_str(body).unwrap_or(Value::Null)
}

/// A registry name (5-50 letters and digits) unique to this test process and call: registry
/// names are global in the fake, as DNS names are in Azure, across every test and earlier run on
/// the same sandbox.
pub fn unique_registry_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let unique = unique("r").replace('-', "");
    let mut name: String = format!("{prefix}{unique}{:06}", nanos % 1_000_000).chars().filter(char::is_ascii_alphanumeric).collect();
    name.truncate(50);
    name
}

/// `application/x-www-form-urlencoded` text of `pairs` (the tests' reqwest has no `form` feature).
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes().map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// tests/sandbox/az-bin: the directory of the fake `az`.
pub fn fake_az_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox/az-bin")
}

impl World {
    /// The pushpool command of [`World::command`], pointed at the Azure fake: `azure`'s environment,
    /// and a PATH without any real `az` or gcloud, with the fake az first unless `azure` said
    /// [`AzureWorld::without_az`].
    pub fn azure_command(&self, azure: &AzureWorld, args: &[&str]) -> Command {
        let mut command = self.command(args);
        let mut first = vec![PathBuf::from(&self.sandbox.fake_bin)];
        if azure.az {
            first.push(fake_az_dir());
        }
        command.env("PATH", path_without_az(&first));
        command.envs(azure.env());
        command
    }

    /// Runs pushpool against the Azure fake, then checks that no secret (this world's, `azure`'s,
    /// or a client secret of this pool's azure-container-instance-credentials blocks) is in its
    /// output or a file under the home.
    pub fn run_azure(&self, azure: &AzureWorld, args: &[&str]) -> Run {
        let run = Run::from(self.azure_command(azure, args).output().unwrap());
        self.assert_no_azure_secret_leaked(azure, &run);
        run
    }

    /// Runs a prepared Azure command (extra environment, say) with the same secret check.
    pub fn run_azure_command(&self, azure: &AzureWorld, command: &mut Command) -> Run {
        let run = Run::from(command.output().unwrap());
        self.assert_no_azure_secret_leaked(azure, &run);
        run
    }

    /// This world's secrets plus `azure`'s and the client secrets of this pool's blocks.
    pub fn azure_secrets(&self, azure: &AzureWorld) -> Vec<String> {
        let mut secrets = self.secrets();
        secrets.extend(azure.secrets());
        for data in self.block_data_with_secrets("azure-container-instance-credentials") {
            secrets.extend(data["client_secret"].as_str().map(str::to_owned));
        }
        secrets.retain(|s| s.len() >= 8);
        secrets
    }

    pub fn assert_no_azure_secret_leaked(&self, azure: &AzureWorld, run: &Run) {
        self.assert_none_leaked(run, &self.azure_secrets(azure));
    }

    /// The block `azure-container-instance-credentials/<pool>-push-pool-credentials`, read from the
    /// server (no secrets).
    pub async fn azure_block(&self) -> Option<Value> {
        self.prefect_get(&format!("/block_types/slug/azure-container-instance-credentials/block_documents/name/{}-push-pool-credentials", self.pool)).await
    }

    /// Loads azure-container-instance-credentials block `name` with Prefect's own Python client and
    /// prefect-azure (`AzureContainerInstanceCredentials.load`), then, with `login` = Some(tenant),
    /// sends the block's client id and secret to the fake's token endpoint for that tenant, as Entra
    /// would see them. Returns {"client_id", "tenant_id", "secret_length", "login_status"?} (never
    /// the secret). Panics with Python's stderr on failure.
    pub fn load_aci_credentials_with_prefect(&self, name: &str, login: Option<(&AzureFake, &AzureTenant)>) -> Value {
        let script = r#"import json, sys, urllib.parse, urllib.request, urllib.error
from prefect_azure.credentials import AzureContainerInstanceCredentials
block = AzureContainerInstanceCredentials.load(sys.argv[1])
secret = block.client_secret.get_secret_value()
out = {"client_id": block.client_id, "tenant_id": block.tenant_id, "secret_length": len(secret)}
if len(sys.argv) > 2:
    form = urllib.parse.urlencode({"client_id": block.client_id, "client_secret": secret, "grant_type": "client_credentials", "scope": sys.argv[2] + "/arm/.default"}).encode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        out["login_status"] = opener.open(f"{sys.argv[2]}/login/{sys.argv[3]}/oauth2/v2.0/token", form).status
    except urllib.error.HTTPError as e:
        out["login_status"] = e.code
print(json.dumps(out))"#;
        let mut args = vec![name.to_owned()];
        if let Some((fake, tenant)) = login {
            args.push(fake.url.clone());
            args.push(tenant.id.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = self.python(script, &args);
        assert!(output.status.success(), "prefect-azure could not load {name}:\n{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
    }
}

/// `first`, then the caller's PATH without gcloud (see [`super::gcp::path_without_gcloud`]) and
/// with every directory that holds an `az` replaced by a mirror of it without it.
pub fn path_without_az(first: &[PathBuf]) -> String {
    static BASE: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let path = super::gcp::path_without_gcloud(&[]);
        std::env::split_paths(&path).map(|dir| if dir.join("az").exists() { mirror_without_az(&dir) } else { dir }).collect()
    });
    std::env::join_paths(first.iter().chain(base.iter())).unwrap().into_string().unwrap()
}

fn mirror_without_az(dir: &Path) -> PathBuf {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in dir.display().to_string().bytes().chain(names.join("\n").bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("path-without-az");
    let mirror = root.join(format!("{hash:016x}"));
    if mirror.is_dir() {
        return mirror;
    }
    let building = root.join(format!("{hash:016x}.{}", std::process::id()));
    std::fs::create_dir_all(&building).unwrap();
    for name in names.iter().filter(|n| n.as_str() != "az") {
        let _ = std::os::unix::fs::symlink(dir.join(name), building.join(name));
    }
    if std::fs::rename(&building, &mirror).is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    mirror
}
