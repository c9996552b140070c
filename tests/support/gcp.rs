//! GCP test support: the GCP fake that `scripts/sandbox.sh` starts (`tests/sandbox/gcp_fake.py`,
//! one listener on 127.0.0.1 for IAM, Cloud Resource Manager v3, Service Usage and Artifact
//! Registry), one isolated project per test, and the environment that points pushpool at it.
//!
//! What tests built on this prove: the wire contract (every request pushpool sends and every answer
//! the fake gives is checked against Google's discovery documents; see [`GcpFake::violations`]) and
//! pushpool's handling of Google's documented semantics, as the fake models them. Not the live cloud.
//!
//! ```ignore
//! let world = World::new("cr").await;
//! let gcp = GcpWorld::new("cr").await;                       // fresh project, ADC key file, gcloud config
//! let run = world.run_gcp(&gcp, &["work-pool", "create", &world.pool, "--type", "cloud-run-v2:push", "--provision-infra", "--yes"]);
//! assert!(gcp.project.writes_since(0).await.contains(&"iam.projects.serviceAccounts.create".to_owned()));
//! gcp.fake.assert_no_violations().await;
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Channel, Run, Sandbox, World, http};

pub const RUN: &str = "run.googleapis.com";
pub const ARTIFACT_REGISTRY: &str = "artifactregistry.googleapis.com";
/// The four services the fake serves, as (path prefix, gcloud's endpoint-override variable).
pub const OVERRIDES: [(&str, &str); 4] = [
    ("iam", "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM"),
    ("cloudresourcemanager", "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER"),
    ("serviceusage", "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE"),
    ("artifactregistry", "CLOUDSDK_API_ENDPOINT_OVERRIDES_ARTIFACTREGISTRY"),
];

/// The sandbox's GCP fake.
#[derive(Debug, Clone)]
pub struct GcpFake {
    pub url: String,
}

impl GcpFake {
    /// The fake, or a panic that says how to start it.
    pub fn get() -> Self {
        let url = std::env::var("PUSHPOOL_SANDBOX_GCP_URL").unwrap_or_else(|_| {
            panic!("PUSHPOOL_SANDBOX_GCP_URL is not set: these tests need the sandbox's GCP fake. Run them with `scripts/test.sh`, or `scripts/sandbox.sh up && eval \"$(scripts/sandbox.sh env)\"` first.")
        });
        Self { url }
    }

    /// A fresh project with no API enabled (`run` and `artifactregistry` DISABLED).
    pub async fn project(&self, prefix: &str) -> GcpProject {
        self.project_with(prefix, &[]).await
    }

    /// A fresh project with `enabled` services ENABLED, e.g. `&[RUN, ARTIFACT_REGISTRY]`.
    pub async fn project_with(&self, prefix: &str, enabled: &[&str]) -> GcpProject {
        for _ in 0..5 {
            let id = unique_project_id(prefix);
            let response = http().post(format!("{}/admin/projects", self.url)).json(&json!({"projectId": id, "enabled": enabled})).send().await.unwrap();
            if response.status() == 409 {
                continue; // an id a previous run on this fake already took
            }
            assert!(response.status().is_success(), "creating project {id}: {}", response.status());
            let body: Value = response.json().await.unwrap();
            return GcpProject { fake: self.url.clone(), id, number: body["number"].as_str().unwrap().to_owned() };
        }
        panic!("no free project id for prefix {prefix}")
    }

    /// Every discovery-contract violation the fake has seen (all tests, all projects): requests
    /// it rejected with "fake contract: ..." and answers of its own that did not fit the schema.
    pub async fn violations(&self) -> Vec<Value> {
        http().get(format!("{}/admin/violations", self.url)).send().await.unwrap().json().await.unwrap()
    }

    /// The violations that concern `project` (by its id or number in the path).
    pub async fn violations_of(&self, project: &GcpProject) -> Vec<Value> {
        let mentions = |v: &Value| {
            let path = v["path"].as_str().unwrap_or_default();
            path.contains(&format!("projects/{}/", project.id))
                || path.contains(&format!("projects/{}:", project.id))
                || path.ends_with(&format!("projects/{}", project.id))
                || path.contains(&format!("{}.iam.gserviceaccount.com", project.id))
                || path.contains(&format!("p2-{}-", project.number))
        };
        self.violations().await.into_iter().filter(mentions).collect()
    }

    /// Asserts that nothing sent to or answered by the fake about `project` broke the contract.
    pub async fn assert_no_violations(&self, project: &GcpProject) {
        let violations = self.violations_of(project).await;
        assert!(violations.is_empty(), "discovery-contract violations:\n{}", serde_json::to_string_pretty(&violations).unwrap());
    }

    /// A service-account key file (a real RSA key) for GOOGLE_APPLICATION_CREDENTIALS: google-cloud-auth
    /// signs a self-signed JWT with it locally and the fake accepts any Bearer token.
    pub async fn credentials(&self, project_id: &str) -> Value {
        http().post(format!("{}/admin/credentials", self.url)).json(&json!({"projectId": project_id})).send().await.unwrap().json().await.unwrap()
    }
}

static PROJECTS: AtomicU32 = AtomicU32::new(0);

/// A project id that is valid GCP syntax (6-30 characters, lowercase letters, digits and hyphens,
/// starting with a letter, not ending with a hyphen) and unique to this test process and call.
pub fn unique_project_id(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let n = PROJECTS.fetch_add(1, Ordering::SeqCst);
    let suffix = format!("-{:05}{n}", (std::process::id().wrapping_mul(7919) ^ (nanos / 1000)) % 100_000);
    let mut head: String = prefix.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    if !head.starts_with(|c: char| c.is_ascii_lowercase()) {
        head.insert(0, 'p');
    }
    head.truncate(30 - suffix.len());
    let mut id = format!("{}{suffix}", head.trim_end_matches('-'));
    while id.len() < 6 {
        id.insert(1, 'x');
    }
    id
}

/// One call the fake saw for a project (operations count to the project that started them).
#[derive(Debug, Clone, Deserialize)]
pub struct GcpCall {
    pub service: String,
    /// The HTTP verb.
    pub method: String,
    pub path: String,
    /// The discovery method id (`iam.projects.serviceAccounts.create`); None if none matched.
    pub action: Option<String>,
    pub write: bool,
    pub status: u16,
}

impl GcpCall {
    /// The method id, or "VERB /path" for a call no discovery method matched.
    pub fn name(&self) -> String {
        self.action.clone().unwrap_or_else(|| format!("{} {}", self.method, self.path))
    }
}

/// One project of the fake, with the admin calls that seed it, fault it and read it back.
#[derive(Debug, Clone)]
pub struct GcpProject {
    fake: String,
    pub id: String,
    /// The 12-digit project number (Service Usage names and SERVICE_DISABLED errors use it).
    pub number: String,
}

impl GcpProject {
    fn admin(&self, path: &str) -> String {
        format!("{}/admin/projects/{}{path}", self.fake, self.id)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = http().request(method.clone(), self.admin(path)).json(&body).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Replaces the project's faults (`json!({})` clears them). Keys: `operation_polls` (N),
    /// `service_disabled_after_enable` (K), `service_account_invisible` (K, for accounts created
    /// afterwards), `etag_race` (N), `key_creation_disabled` (true), `throttle` ({"regex over the
    /// method id": N}), `empty_pages` (N list pages answered with no item and a token that
    /// resumes). See tests/sandbox/gcp_fake.py.
    pub async fn faults(&self, faults: Value) {
        self.send(reqwest::Method::PUT, "/faults", faults).await;
    }

    /// The page size of the project's list answers when a request asks none (the fake's
    /// default is 2, so that every list pages).
    pub async fn page_size(&self, size: usize) {
        self.send(reqwest::Method::PUT, "/paging", json!({"pageSize": size})).await;
    }

    /// Everything the project holds: services, service accounts with their keys, repositories
    /// with labels and image counts, the IAM policy, the faults left.
    pub async fn state(&self) -> Value {
        http().get(self.admin("/state")).send().await.unwrap().json().await.unwrap()
    }

    pub async fn calls(&self) -> Vec<GcpCall> {
        http().get(self.admin("/calls")).send().await.unwrap().json().await.unwrap()
    }

    /// How many calls so far: a mark to count later writes from.
    pub async fn mark(&self) -> usize {
        self.calls().await.len()
    }

    /// The writes after `mark` (anything but GET and getIamPolicy, failed ones included), as
    /// discovery method ids.
    pub async fn writes_since(&self, mark: usize) -> Vec<String> {
        self.calls().await.into_iter().skip(mark).filter(|c| c.write).map(|c| c.name()).collect()
    }

    /// Sets service states, e.g. `json!({RUN: "ENABLED"})`.
    pub async fn set_services(&self, states: Value) {
        self.send(reqwest::Method::PUT, "/services", states).await;
    }

    /// Adds `member` to `role` in the project policy (as another client would; the etag changes).
    pub async fn add_binding(&self, role: &str, member: &str) {
        self.send(reqwest::Method::POST, "/bindings", json!({"role": role, "member": member})).await;
    }

    /// The email of account `account_id` in this project.
    pub fn email(&self, account_id: &str) -> String {
        format!("{account_id}@{}.iam.gserviceaccount.com", self.id)
    }

    /// Creates a service account (no write is recorded); returns its email.
    pub async fn seed_service_account(&self, account_id: &str, description: Option<&str>) -> String {
        let body = json!({"accountId": account_id, "displayName": account_id, "description": description.unwrap_or_default()});
        self.send(reqwest::Method::POST, "/serviceAccounts", body).await["email"].as_str().unwrap().to_owned()
    }

    /// Adds `count` USER_MANAGED keys (metadata only, no key file); returns their ids.
    pub async fn seed_keys(&self, email: &str, count: usize) -> Vec<String> {
        let reply = self.send(reqwest::Method::POST, &format!("/serviceAccounts/{email}/keys"), json!({"count": count})).await;
        reply["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect()
    }

    pub async fn disable_key(&self, email: &str, key_id: &str) {
        self.send(reqwest::Method::POST, &format!("/serviceAccounts/{email}/keys/{key_id}/disable"), json!({})).await;
    }

    /// Makes a key expired, as the organization policy constraints/iam.serviceAccountKeyExpiryHours
    /// does to a key past its end: still listed, its validBeforeTime in the past.
    pub async fn expire_key(&self, email: &str, key_id: &str) {
        self.send(reqwest::Method::POST, &format!("/serviceAccounts/{email}/keys/{key_id}/expire"), json!({})).await;
    }

    /// Deletes a key behind pushpool's back (e.g. the key of an existing block).
    pub async fn delete_key(&self, email: &str, key_id: &str) {
        self.send(reqwest::Method::DELETE, &format!("/serviceAccounts/{email}/keys/{key_id}"), json!({})).await;
    }

    pub async fn seed_repository(&self, location: &str, repository_id: &str, labels: &[(&str, &str)]) {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let body = json!({"location": location, "repositoryId": repository_id, "labels": labels});
        self.send(reqwest::Method::POST, "/repositories", body).await;
    }

    pub async fn seed_images(&self, location: &str, repository_id: &str, count: usize) {
        self.send(reqwest::Method::POST, &format!("/locations/{location}/repositories/{repository_id}/images"), json!({"count": count})).await;
    }

    /// The service account `email`'s keys of type USER_MANAGED, as (id, disabled).
    pub async fn user_keys(&self, email: &str) -> Vec<(String, bool)> {
        let state = self.state().await;
        let keys = state["serviceAccounts"][email]["keys"].as_array().cloned().unwrap_or_default();
        keys.iter().filter(|k| k["type"] == "USER_MANAGED").map(|k| (k["id"].as_str().unwrap().to_owned(), k["disabled"].as_bool().unwrap_or(false))).collect()
    }

    /// The members of `role` in the project policy.
    pub async fn members(&self, role: &str) -> Vec<String> {
        let state = self.state().await;
        let bindings = state["iamPolicy"]["bindings"].as_array().cloned().unwrap_or_default();
        bindings.iter().filter(|b| b["role"] == role).flat_map(|b| b["members"].as_array().cloned().unwrap_or_default()).map(|m| m.as_str().unwrap().to_owned()).collect()
    }

    /// A repository's labels, or None if it does not exist.
    pub async fn repository_labels(&self, location: &str, repository_id: &str) -> Option<BTreeMap<String, String>> {
        let state = self.state().await;
        let repositories = state["repositories"].as_array().cloned().unwrap_or_default();
        let repo = repositories.into_iter().find(|r| r["location"] == location && r["repositoryId"] == repository_id)?;
        Some(serde_json::from_value(repo["labels"].clone()).unwrap_or_default())
    }

    /// The state of service `service`: "ENABLED" or "DISABLED".
    pub async fn service_state(&self, service: &str) -> String {
        self.state().await["services"][service].as_str().unwrap_or("DISABLED").to_owned()
    }
}

/// A test's GCP side: a project, Application Default Credentials, a gcloud configuration, and the
/// endpoint the four `CLOUDSDK_API_ENDPOINT_OVERRIDES_*` point at (the fake, or a proxy channel in
/// front of it). Its files live in a directory of its own, outside the [`World`]'s home, so that
/// the world's secret-leak check (which scans the home) is not tripped by the test's own key file.
pub struct GcpWorld {
    pub fake: GcpFake,
    pub project: GcpProject,
    /// The region written to the gcloud configuration (`run/region`).
    pub region: String,
    pub dir: tempfile::TempDir,
    /// A proxy channel in front of the fake, when [`GcpWorld::through_proxy`] was used.
    pub channel: Option<Channel>,
    /// The ADC key file's content (its private key counts as a secret).
    pub adc: Value,
    credentials: bool,
    gcloud: bool,
}

impl GcpWorld {
    /// A fresh project (no API enabled), an ADC key file and a gcloud configuration with
    /// `core/project` = the project and `run/region` = us-central1.
    pub async fn new(prefix: &str) -> Self {
        let fake = GcpFake::get();
        let project = fake.project(prefix).await;
        Self::on(project).await
    }

    /// The same for an existing project (e.g. one made with [`GcpFake::project_with`]).
    pub async fn on(project: GcpProject) -> Self {
        let fake = GcpFake::get();
        let dir = tempfile::tempdir().unwrap();
        let adc = fake.credentials(&project.id).await;
        let world = Self { fake, region: "us-central1".into(), dir, channel: None, adc, credentials: true, gcloud: false, project };
        write_private(&world.credentials_path(), &serde_json::to_string_pretty(&world.adc).unwrap());
        world.write_gcloud_config(Some(&world.project.id.clone()), Some("us-central1"));
        world
    }

    /// Sends pushpool's GCP traffic through a proxy channel (in `group`, for the kill-after-k-writes
    /// hold of [`super::hold_group_after`]); the channel's calls and faults then apply.
    pub async fn through_proxy(mut self, sandbox: &Sandbox, group: Option<&str>) -> Self {
        self.channel = Some(Channel::open_in(sandbox, &self.fake.url, group).await);
        self
    }

    /// Puts the fake `gcloud` (tests/sandbox/gcloud-bin) on pushpool's PATH.
    pub fn with_gcloud(mut self) -> Self {
        self.gcloud = true;
        self
    }

    /// No GOOGLE_APPLICATION_CREDENTIALS (and the metadata server is a dead port).
    pub fn without_credentials(mut self) -> Self {
        self.credentials = false;
        self
    }

    /// The base URL the endpoint overrides point at.
    pub fn endpoint(&self) -> String {
        self.channel.as_ref().map(Channel::url).unwrap_or_else(|| self.fake.url.clone())
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.dir.path().join("adc.json")
    }

    /// CLOUDSDK_CONFIG: gcloud's configuration directory for this test.
    pub fn gcloud_config_dir(&self) -> PathBuf {
        self.dir.path().join("gcloud")
    }

    /// Writes `configurations/config_default` (`[core] project`, `[run] region`, each only if
    /// given) and `active_config` = default. `None, None` leaves an empty configuration.
    pub fn write_gcloud_config(&self, project: Option<&str>, region: Option<&str>) {
        let dir = self.gcloud_config_dir();
        std::fs::create_dir_all(dir.join("configurations")).unwrap();
        let mut text = String::new();
        if let Some(project) = project {
            text.push_str(&format!("[core]\naccount = tester@example.com\nproject = {project}\n\n"));
        }
        if let Some(region) = region {
            text.push_str(&format!("[run]\nregion = {region}\n"));
        }
        std::fs::write(dir.join("configurations/config_default"), text).unwrap();
        std::fs::write(dir.join("active_config"), "default").unwrap();
    }

    /// The fake gcloud's log: one JSON object {"argv": [...]} per invocation.
    pub fn gcloud_log(&self) -> PathBuf {
        self.dir.path().join("gcloud.log")
    }

    pub fn gcloud_calls(&self) -> Vec<Value> {
        std::fs::read_to_string(self.gcloud_log()).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// The environment that points pushpool at the fake: the four endpoint overrides, ADC, gcloud's
    /// configuration directory, a dead metadata server, the fake gcloud's log.
    pub fn env(&self) -> Vec<(String, String)> {
        let endpoint = self.endpoint();
        let mut env: Vec<(String, String)> = OVERRIDES.iter().map(|(prefix, var)| (var.to_string(), format!("{endpoint}/{prefix}/"))).collect();
        env.push(("CLOUDSDK_CONFIG".into(), self.gcloud_config_dir().display().to_string()));
        // Nothing may try the real metadata server (google-cloud-auth reads GCE_METADATA_HOST;
        // Python's google-auth GCE_METADATA_IP / GCE_METADATA_ROOT).
        for var in ["GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"] {
            env.push((var.into(), "127.0.0.1:9".into()));
        }
        env.push(("FAKE_GCLOUD_LOG".into(), self.gcloud_log().display().to_string()));
        if self.credentials {
            env.push(("GOOGLE_APPLICATION_CREDENTIALS".into(), self.credentials_path().display().to_string()));
        }
        env
    }

    /// Secrets of this GCP side: the ADC private key, and the fake gcloud's token when it is on PATH.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = pem_needles(self.adc["private_key"].as_str().unwrap_or_default());
        if self.gcloud {
            secrets.push("ya29.fake-gcloud-token".into());
        }
        secrets
    }
}

/// Distinctive pieces of a PEM private key: its full base64 lines, which appear verbatim whether
/// the key is printed raw or JSON-escaped (\n between lines).
pub fn pem_needles(pem: &str) -> Vec<String> {
    pem.lines().filter(|l| !l.starts_with("-----") && l.len() >= 40).map(str::to_owned).collect()
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// tests/sandbox/gcloud-bin: the directory of the fake `gcloud`.
pub fn fake_gcloud_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox/gcloud-bin")
}

impl World {
    /// The pushpool command of [`World::command`], pointed at the GCP fake: `gcp`'s environment, and
    /// a PATH without any real gcloud (this machine may have one in /usr/bin), with the fake
    /// gcloud first only if `gcp` asked for it.
    pub fn gcp_command(&self, gcp: &GcpWorld, args: &[&str]) -> Command {
        let mut command = self.command(args);
        let mut first = vec![PathBuf::from(&self.sandbox.fake_bin)];
        if gcp.gcloud {
            first.push(fake_gcloud_dir());
        }
        command.env("PATH", path_without_gcloud(&first));
        command.envs(gcp.env());
        command
    }

    /// Runs pushpool against the GCP fake, then checks that no secret (this world's, `gcp`'s, or a
    /// private key of this pool's gcp-credentials blocks) is in its output or a file under the home.
    pub fn run_gcp(&self, gcp: &GcpWorld, args: &[&str]) -> Run {
        let run = Run::from(self.gcp_command(gcp, args).output().unwrap());
        self.assert_no_gcp_secret_leaked(gcp, &run);
        run
    }

    /// Runs a prepared GCP command (extra environment, say) with the same secret check.
    pub fn run_gcp_command(&self, gcp: &GcpWorld, command: &mut Command) -> Run {
        let run = Run::from(command.output().unwrap());
        self.assert_no_gcp_secret_leaked(gcp, &run);
        run
    }

    /// This world's secrets plus `gcp`'s and the private keys of this pool's gcp-credentials blocks.
    pub fn gcp_secrets(&self, gcp: &GcpWorld) -> Vec<String> {
        let mut secrets = self.secrets();
        secrets.extend(gcp.secrets());
        for data in self.block_data_with_secrets("gcp-credentials") {
            secrets.extend(pem_needles(data["service_account_info"]["private_key"].as_str().unwrap_or_default()));
        }
        secrets.retain(|s| s.len() >= 8);
        secrets
    }

    pub fn assert_no_gcp_secret_leaked(&self, gcp: &GcpWorld, run: &Run) {
        self.assert_none_leaked(run, &self.gcp_secrets(gcp));
    }

    /// The block `gcp-credentials/<pool>-push-pool-credentials`, read from the server (no secrets).
    pub async fn gcp_block(&self) -> Option<Value> {
        self.prefect_get(&format!("/block_types/slug/gcp-credentials/block_documents/name/{}-push-pool-credentials", self.pool)).await
    }

    /// Loads gcp-credentials block `name` with Prefect's own Python client and prefect-gcp
    /// (`GcpCredentials.load`), and returns what it read: {"project", "client_email",
    /// "private_key_id", "type"} (never the private key). Panics with Python's stderr on failure.
    pub fn load_gcp_credentials_with_prefect(&self, name: &str) -> Value {
        let script = "import json, sys\nfrom prefect_gcp import GcpCredentials\nblock = GcpCredentials.load(sys.argv[1])\ninfo = block.service_account_info.get_secret_value()\nprint(json.dumps({'project': block.project, 'client_email': info.get('client_email'), 'private_key_id': info.get('private_key_id'), 'type': info.get('type')}))";
        let output = self.python(script, &[name]);
        assert!(output.status.success(), "prefect-gcp could not load {name}:\n{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
    }
}

/// Names of Google Cloud SDK programs that must not be found on a test's PATH.
fn is_gcloud_tool(name: &str) -> bool {
    name.contains("gcloud") || name == "gsutil" || name == "bq"
}

/// `first` then the caller's PATH, where every directory that holds a Google Cloud SDK program
/// is replaced by a mirror of it (symlinks to everything else). Mirrors are built once per set of
/// names, under the target's test temp dir, and shared by the test binaries.
pub fn path_without_gcloud(first: &[PathBuf]) -> String {
    static BASE: OnceLock<Vec<PathBuf>> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).map(|dir| if has_gcloud(&dir) { mirror_without_gcloud(&dir) } else { dir }).collect()
    });
    let all = first.iter().chain(base.iter());
    std::env::join_paths(all).unwrap().into_string().unwrap()
}

fn has_gcloud(dir: &Path) -> bool {
    std::fs::read_dir(dir).into_iter().flatten().flatten().any(|e| is_gcloud_tool(&e.file_name().to_string_lossy()))
}

fn mirror_without_gcloud(dir: &Path) -> PathBuf {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    // Keyed by the directory and its listing: a change in it makes a new mirror.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in dir.display().to_string().bytes().chain(names.join("\n").bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("path-without-gcloud");
    let mirror = root.join(format!("{hash:016x}"));
    if mirror.is_dir() {
        return mirror;
    }
    let building = root.join(format!("{hash:016x}.{}", std::process::id()));
    std::fs::create_dir_all(&building).unwrap();
    for name in names.iter().filter(|n| !is_gcloud_tool(n)) {
        let _ = std::os::unix::fs::symlink(dir.join(name), building.join(name));
    }
    // Another test binary may have won the race: then its mirror is used and ours is dropped.
    if std::fs::rename(&building, &mirror).is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    mirror
}

/// Standard base64 (with or without padding) to bytes; the tests have no base64 crate.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => panic!("not base64: {c:?}"),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &d)| n | (u32::from(d) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
