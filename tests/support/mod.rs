//! Test support: the sandbox started by `scripts/test.sh` (moto, a real Prefect server and a
//! counting proxy on 127.0.0.1), one isolated AWS account per test, and a runner for the
//! `pushpool` binary with a fake `docker` first on PATH.
//!
//! Isolation: every test gets its own moto account (STS AssumeRole into a fresh account id:
//! moto keeps each account's resources apart), its own pool names, its own PREFECT_HOME and
//! HOME, and its own proxy channels, so that the write calls a run makes can be counted.

#![allow(dead_code)]

pub mod azure;
pub mod gcp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Deserialize;
use serde_json::{Value, json};

/// The URLs of the sandbox, from the environment `scripts/test.sh` sets.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub moto: String,
    pub prefect: String,
    pub proxy: String,
    pub python: String,
    pub fake_bin: String,
    /// The Prefect-Cloud-shaped front (tests/sandbox/cloud_front.py), e.g. http://127.0.0.1:15500.
    pub cloud: String,
}

impl Sandbox {
    /// The sandbox, or a panic that says how to start it.
    pub fn get() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: these tests need the sandbox. Run them with `scripts/test.sh` (it starts moto and a Prefect server on 127.0.0.1).")
            })
        };
        Self {
            moto: var("PUSHPOOL_SANDBOX_MOTO_URL"),
            prefect: var("PUSHPOOL_SANDBOX_PREFECT_URL"),
            proxy: var("PUSHPOOL_SANDBOX_PROXY_URL"),
            python: var("PUSHPOOL_SANDBOX_PYTHON"),
            fake_bin: var("PUSHPOOL_SANDBOX_FAKE_BIN"),
            cloud: var("PUSHPOOL_SANDBOX_CLOUD_URL"),
        }
    }
}

/// One API call seen by a proxy channel.
#[derive(Debug, Clone, Deserialize)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub service: String,
    pub action: String,
    pub write: bool,
    pub status: u16,
    /// The kind of fault the proxy injected into this call, if any.
    #[serde(default)]
    pub fault: Option<String>,
}

/// A proxy listener in front of moto or Prefect that records every call.
pub struct Channel {
    proxy: String,
    pub port: u16,
}

impl Channel {
    pub async fn open(sandbox: &Sandbox, target: &str) -> Self {
        Self::open_in(sandbox, target, None).await
    }

    /// A channel whose writes count together with the other channels of `group`.
    pub async fn open_in(sandbox: &Sandbox, target: &str, group: Option<&str>) -> Self {
        let target = target.trim_end_matches("/api");
        let reply: Value = http()
            .post(format!("{}/channels", sandbox.proxy))
            .json(&json!({"target": target, "latency_ms": 0, "group": group}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self { proxy: sandbox.proxy.clone(), port: reply["port"].as_u64().expect("the proxy returns a port") as u16 }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every call so far.
    pub async fn calls(&self) -> Vec<Call> {
        http().get(format!("{}/channels/{}/calls", self.proxy, self.port)).send().await.unwrap().json().await.unwrap()
    }

    /// Makes the channel answer the given AWS actions with errors (see proxy.py); `{}` clears.
    pub async fn set_faults(&self, faults: Value) {
        let response = http().put(format!("{}/channels/{}/faults", self.proxy, self.port)).json(&faults).send().await.unwrap();
        assert!(response.status().is_success());
    }

    /// How many calls so far: a mark to count later writes from.
    pub async fn mark(&self) -> usize {
        self.calls().await.len()
    }

    /// Sets the channel's page size (see proxy.py; 2 unless set): AWS lists `size` items a
    /// page, with the action's continuation token; Prefect filter requests a `limit` of at
    /// most `size`.
    pub async fn page(&self, size: usize) {
        let response = http().put(format!("{}/channels/{}/paging", self.proxy, self.port)).json(&json!({"page_size": size})).send().await.unwrap();
        assert!(response.status().is_success());
    }

    /// The write calls after `mark`, as "service action" strings.
    pub async fn writes_since(&self, mark: usize) -> Vec<String> {
        let calls = self.calls().await;
        calls.into_iter().skip(mark).filter(|c| c.write).map(|c| format!("{} {}", c.service, c.action)).collect()
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this test process and call: pools, accounts.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id() % 100_000)
}

/// Every file under `dir`, the fake docker's log excepted (it records what docker was given
/// on stdin: the registry password is meant to be there).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else if path.file_name().is_some_and(|n| n != "docker.log") {
            files.push(path);
        }
    }
    files
}

/// A POST to the Prefect server from synchronous code: a plain HTTP/1.1 exchange on a
/// loopback socket, so that [`World::run`] can check secrets without an async runtime.
fn blocking_post(api: &str, path: &str, body: &str) -> Value {
    use std::io::{Read, Write};
    let address = api.trim_start_matches("http://");
    let (host, prefix) = address.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((address, String::new()));
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    let request =
        format!("POST {prefix}{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, payload) = response.split_once("\r\n\r\n").unwrap_or_default();
    let payload = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(payload) } else { payload.to_owned() };
    serde_json::from_str(&payload).unwrap_or(Value::Null)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// Starts `command` (output discarded) and SIGKILLs it once `channels` have answered `writes`
/// successful writes between them (or it exited, or a minute passed): a run killed "just after"
/// that write, when the channels are held by [`hold_group_after`].
pub async fn kill_after_writes(command: &mut Command, channels: &[&Channel], writes: usize) {
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let started = std::time::Instant::now();
    loop {
        let mut done = 0;
        for channel in channels {
            done += channel.calls().await.iter().filter(|c| c.write && c.status < 400).count();
        }
        if done >= writes || child.try_wait().unwrap().is_some() || started.elapsed() > std::time::Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Freezes every channel of `group` right after its `writes`-th successful write.
pub async fn hold_group_after(sandbox: &Sandbox, group: &str, writes: usize) {
    let response = http().put(format!("{}/groups/{group}/hold", sandbox.proxy)).json(&json!({"after_writes": writes})).send().await.unwrap();
    assert!(response.status().is_success());
}

/// A workspace of the sandbox's Prefect-Cloud-shaped front (tests/sandbox/cloud_front.py) in an
/// account of its own: its ids, the user key (`pnu_`) and service-account key (`pnb_`) that may
/// use it, and a second workspace of the account that neither key may use.
#[derive(Debug, Clone, Deserialize)]
pub struct CloudWorkspace {
    /// The front's `PREFECT_CLOUD_API_URL`, reached directly (not through a channel).
    pub cloud_api_url: String,
    pub account_id: String,
    pub workspace_id: String,
    pub hidden_workspace_id: String,
    pub keys: CloudKeys,
}

/// The API keys of a [`CloudWorkspace`].
#[derive(Debug, Clone, Deserialize)]
pub struct CloudKeys {
    pub user: String,
    pub bot: String,
}

impl CloudWorkspace {
    /// A new account and workspace on the front; with `rate_limit` = (requests, seconds), the
    /// account answers 429 with Retry-After beyond that many requests per window.
    pub async fn new(sandbox: &Sandbox, rate_limit: Option<(u32, u32)>) -> Self {
        let body = match rate_limit {
            Some((requests, seconds)) => json!({"rate_limit": {"requests": requests, "seconds": seconds}}),
            None => json!({}),
        };
        let response = http().post(format!("{}/_sandbox/workspaces", sandbox.cloud)).json(&body).send().await.unwrap();
        assert!(response.status().is_success(), "the Cloud-shaped front made no workspace: {}", response.status());
        response.json().await.unwrap()
    }

    /// The API URL of `workspace` (this one's or the hidden one's) under the Cloud API `cloud`.
    pub fn workspace_url(&self, cloud: &str, workspace: &str) -> String {
        format!("{cloud}/accounts/{}/workspaces/{workspace}", self.account_id)
    }
}

/// Credentials of one moto account.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub access_key: String,
    pub secret_key: String,
    pub session_token: Option<String>,
}

/// A test's world: its account, channels, homes and pool name.
pub struct World {
    pub sandbox: Sandbox,
    pub account: Account,
    pub aws: Channel,
    pub prefect: Channel,
    pub home: tempfile::TempDir,
    pub pool: String,
    pub region: String,
    /// The moto server this world's account lives on.
    pub moto: String,
    /// The Prefect Cloud workspace this world's Prefect profile names, after [`World::on_cloud`].
    pub cloud: Option<CloudWorkspace>,
}

impl World {
    /// A fresh account (with moto's default VPC, which has no internet gateway) and a
    /// Prefect profile pointing at the sandbox through a counting channel.
    pub async fn new(prefix: &str) -> Self {
        let sandbox = Sandbox::get();
        let account = fresh_account(&sandbox.moto).await;
        Self::on(prefix, sandbox.moto.clone(), account).await
    }

    /// A world whose AWS side is `account` on the moto server at `moto`.
    pub async fn on(prefix: &str, moto: String, account: Account) -> Self {
        let sandbox = Sandbox::get();
        let aws = Channel::open(&sandbox, &moto).await;
        let prefect = Channel::open(&sandbox, &sandbox.prefect).await;
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".prefect")).unwrap();
        let world = Self { sandbox, account, aws, prefect, home, pool: unique(prefix), region: "us-east-1".into(), moto, cloud: None };
        world.write_profile(&format!("PREFECT_API_URL = \"{}/api\"", world.prefect.url()));
        world
    }

    /// This world on Prefect Cloud: a new workspace of the sandbox's Cloud-shaped front (see
    /// [`CloudWorkspace::new`]), its Prefect channel now in front of the front, and its profile
    /// naming, through that channel, the workspace's URL, the user key and
    /// `PREFECT_CLOUD_API_URL`, as `prefect cloud login` leaves a profile.
    pub async fn on_cloud(mut self, rate_limit: Option<(u32, u32)>) -> Self {
        let cloud = CloudWorkspace::new(&self.sandbox, rate_limit).await;
        self.prefect = Channel::open(&self.sandbox, &self.sandbox.cloud).await;
        let api = format!("{}/api", self.prefect.url());
        self.write_profile(&format!(
            "PREFECT_API_URL = \"{}\"\nPREFECT_API_KEY = \"{}\"\nPREFECT_CLOUD_API_URL = \"{api}\"",
            cloud.workspace_url(&api, &cloud.workspace_id),
            cloud.keys.user
        ));
        self.cloud = Some(cloud);
        self
    }

    /// `PREFECT_CLOUD_API_URL` as this world's profile names it (through its channel).
    pub fn cloud_api_url(&self) -> String {
        format!("{}/api", self.prefect.url())
    }

    /// Writes the Prefect profile file: the active profile `sandbox` with `settings` (TOML lines),
    /// and another profile that must be left alone.
    fn write_profile(&self, settings: &str) {
        let profiles = format!(
            "# a comment that must survive\nactive = \"sandbox\"\n\n[profiles.sandbox]\n{settings}\nPREFECT_LOGGING_LEVEL = \"INFO\"\n\n[profiles.other]\nPREFECT_API_URL = \"http://127.0.0.1:9/api\"\n"
        );
        std::fs::write(self.profiles_path(), profiles).unwrap();
    }

    pub fn profiles_path(&self) -> PathBuf {
        self.home.path().join(".prefect/profiles.toml")
    }

    /// Writes `pools.toml` into the world's home, an `ecs:push` pool per name of `names`, each
    /// with an IAM user and policy of its own named as the pool (a key each: IAM allows a user
    /// two), the rest (role, network, cluster, repository) shared; returns its path.
    pub fn ecs_pools_file(&self, names: &[String]) -> String {
        let text: Vec<String> =
            names.iter().map(|name| format!("[[pool]]\nname = \"{name}\"\ntype = \"ecs:push\"\nset = {{ user = \"{name}\", policy = \"{name}\" }}\n")).collect();
        let path = self.home.path().join("pools.toml");
        std::fs::write(&path, text.join("\n")).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// The names of `count` pools of this world: `<pool>-0`, `<pool>-1`...
    pub fn pool_names(&self, count: usize) -> Vec<String> {
        (0..count).map(|i| format!("{}-{i}", self.pool)).collect()
    }

    pub fn docker_log(&self) -> PathBuf {
        self.home.path().join("docker.log")
    }

    /// The pushpool command with this world's environment and nothing else of the caller's.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pushpool"));
        command
            .args(args)
            .env_clear()
            .env("PATH", format!("{}:{}", self.sandbox.fake_bin, std::env::var("PATH").unwrap_or_default()))
            .env("HOME", self.home.path())
            .env("PREFECT_HOME", self.home.path().join(".prefect"))
            // dask reads /etc/dask unless told otherwise: the test's own, empty, instead.
            .env("DASK_ROOT_CONFIG", self.home.path().join("etc-dask"))
            .env("FAKE_DOCKER_LOG", self.docker_log())
            .env("AWS_ENDPOINT_URL", self.aws.url())
            .env("AWS_ACCESS_KEY_ID", &self.account.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.account.secret_key)
            .env("AWS_REGION", &self.region)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1")
            // Wide enough that no reason wraps, so tests can look for whole sentences.
            .env("COLUMNS", "400")
            .stdin(Stdio::null());
        if let Some(token) = &self.account.session_token {
            command.env("AWS_SESSION_TOKEN", token);
        }
        command
    }

    /// Asserts that neither AWS nor Prefect saw a write since the marks.
    pub async fn assert_no_writes_since(&self, marks: (usize, usize)) {
        let aws = self.aws.writes_since(marks.0).await;
        let prefect = self.prefect.writes_since(marks.1).await;
        assert!(aws.is_empty() && prefect.is_empty(), "expected no write calls, saw AWS {aws:?} and Prefect {prefect:?}");
    }

    /// Marks on both channels.
    pub async fn marks(&self) -> (usize, usize) {
        (self.aws.mark().await, self.prefect.mark().await)
    }

    /// Runs pushpool and returns its output, after checking that no secret of this world
    /// appears in it (see [`World::assert_no_secret_leaked`]).
    pub fn run(&self, args: &[&str]) -> Run {
        self.checked(Run::from(self.command(args).output().unwrap()))
    }

    /// Runs a prepared command (extra environment, say) with the same secret check.
    pub fn run_command(&self, command: &mut Command) -> Run {
        self.checked(Run::from(command.output().unwrap()))
    }

    fn checked(&self, run: Run) -> Run {
        self.assert_no_secret_leaked(&run);
        run
    }

    /// Every secret value this world's runs can have produced or used: the account's
    /// credentials, the ECR registry password, and the secret keys of every credentials block
    /// of its pools (read from the server with `include_secrets`). None may appear in what a
    /// run printed, nor in any file under the world's home except Prefect's own.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.account.secret_key.clone(), format!("{}-auth-token", self.account.id)];
        secrets.extend(self.account.session_token.clone());
        secrets.extend(self.cloud.iter().flat_map(|c| [c.keys.user.clone(), c.keys.bot.clone()]));
        for data in self.block_data_with_secrets("aws-credentials") {
            secrets.extend(data["aws_secret_access_key"].as_str().map(str::to_owned));
        }
        secrets.retain(|s| s.len() >= 8);
        secrets
    }

    /// The data, secrets included, of this world's pools' blocks of type `slug`.
    pub fn block_data_with_secrets(&self, slug: &str) -> Vec<Value> {
        let body = json!({
            "block_types": {"slug": {"any_": [slug]}},
            "block_documents": {"name": {"like_": self.pool}},
            "include_secrets": true,
            "limit": 200,
        })
        .to_string();
        let blocks = blocking_post(&self.sandbox.prefect, "/block_documents/filter", &body);
        let ours = blocks.as_array().cloned().unwrap_or_default().into_iter().filter(|b| b["name"].as_str().is_some_and(|n| n.starts_with(&self.pool)));
        ours.map(|b| b["data"].clone()).collect()
    }

    /// Asserts that no secret of [`World::secrets`] is in `run`'s output or in a file
    /// pushpool may have written under the world's home (plan files, logs, the profile).
    pub fn assert_no_secret_leaked(&self, run: &Run) {
        self.assert_none_leaked(run, &self.secrets());
    }

    /// Asserts that none of `secrets` is in `run`'s output or in a file under the world's home;
    /// but the Prefect API key of a world on Cloud, which its profile holds as `prefect cloud
    /// login` left it, once, in that one line.
    pub fn assert_none_leaked(&self, run: &Run, secrets: &[String]) {
        run.assert_no_secret(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
        let own_key = self.cloud.as_ref().map(|c| format!("PREFECT_API_KEY = \"{}\"\n", c.keys.user));
        for file in files_under(self.home.path()) {
            let mut text = std::fs::read_to_string(&file).unwrap_or_default();
            if let Some(line) = own_key.as_deref().filter(|_| file == self.profiles_path()) {
                text = text.replacen(line, "", 1);
            }
            for secret in secrets {
                assert!(!text.contains(secret.as_str()), "a secret leaked into {}", file.display());
            }
        }
    }

    /// `template` with `{pool}` replaced by this world's pool name.
    pub fn args<'a>(&'a self, template: &[&'a str]) -> Vec<&'a str> {
        template.iter().map(|a| if *a == "{pool}" { self.pool.as_str() } else { a }).collect()
    }

    /// The job variable defaults of the pool's base job template (the pool must exist).
    pub async fn job_variable_defaults(&self) -> Value {
        let pool = self.work_pool().await.expect("the pool exists");
        let properties = pool["base_job_template"]["variables"]["properties"].clone();
        properties.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v["default"].clone())).collect()
    }

    /// `work-pool create <pool> --type ecs:push --provision-infra` plus `extra`.
    pub fn create(&self, extra: &[&str]) -> Run {
        let mut args = vec!["work-pool", "create", &self.pool, "--type", "ecs:push", "--provision-infra"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// SDK clients talking to moto directly (not through the counting channel), for
    /// seeding states and checking results.
    pub async fn clients(&self) -> Clients {
        clients(&self.moto, &self.account).await
    }

    /// A Prefect object read straight from the server, not through the channel.
    pub async fn prefect_get(&self, path: &str) -> Option<Value> {
        let response = self.prefect_request(reqwest::Method::GET, path, None).await;
        if response.status() == 404 {
            return None;
        }
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        Some(response.json().await.unwrap())
    }

    /// Sends a write straight to the Prefect server, for seeding states.
    pub async fn prefect_send(&self, method: reqwest::Method, path: &str, body: Value) -> u16 {
        self.prefect_request(method, path, Some(body)).await.status().as_u16()
    }

    /// A request straight to the Prefect server. A busy SQLite-backed server answers 503
    /// (pushpool's own client retries it too): such an answer is sent again, three tries in
    /// all, so that the tests' own reads and seeding writes are not flakes.
    async fn prefect_request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let url = format!("{}{path}", self.sandbox.prefect);
        for attempt in 1.. {
            let mut request = http().request(method.clone(), &url);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            if attempt == 3 || !matches!(response.status().as_u16(), 502..=504) {
                return response;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        unreachable!("the loop returns by its third attempt")
    }

    /// Registers on the sandbox's open-source server a block type that only Prefect Cloud has
    /// (`modal-credentials`, `coiled-credentials`), as `prefect block register` does:
    /// `POST /block_types/`, then `POST /block_schemas/` with its id. `fixture` names a file of
    /// `tests/fixtures/prefect-cloud/`, e.g. `modal-credentials.block-type.json`. Idempotent, and
    /// safe for tests running at once: an existing type answers 409, an existing schema 200, and
    /// a write the busy server answered with a 5xx (or that lost a race) is sent again.
    pub async fn register_block_type(&self, fixture: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prefect-cloud").join(fixture);
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let slug = fixture["block_type"]["slug"].as_str().expect("the fixture has a slug");
        self.prefect_post_until("/block_types/", &fixture["block_type"], &[201, 409]).await;
        let block_type = self.prefect_get(&format!("/block_types/slug/{slug}")).await.expect("the block type exists");
        let mut schema = fixture["block_schema"].clone();
        schema["block_type_id"] = block_type["id"].clone();
        self.prefect_post_until("/block_schemas/", &schema, &[200, 201]).await;
    }

    /// POSTs `body` straight to the Prefect server until it answers one of `expected`, three
    /// tries at most.
    async fn prefect_post_until(&self, path: &str, body: &Value, expected: &[u16]) {
        let mut status = 0;
        for _ in 0..3 {
            status = self.prefect_send(reqwest::Method::POST, path, body.clone()).await;
            if expected.contains(&status) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("POST {path}: {status}, expected one of {expected:?}");
    }

    /// The apply markers of this world's account: (name, value), oldest first.
    pub async fn apply_markers(&self) -> Vec<(String, Value)> {
        let filter = json!({"variables": {"tags": {"all_": ["pushpool_apply"]}}, "sort": "NAME_ASC", "limit": 200});
        let response = http().post(format!("{}/variables/filter", self.sandbox.prefect)).json(&filter).send().await.unwrap();
        let variables: Vec<Value> = response.json().await.unwrap();
        let prefix = format!("pushpool_apply_aws_{}_", self.account.id);
        let names = variables.into_iter().filter(|v| v["name"].as_str().unwrap().starts_with(&prefix));
        names.map(|v| (v["name"].as_str().unwrap().to_owned(), v["value"].clone())).collect()
    }

    /// The pool's record (variable name and value), as the Prefect server holds it.
    pub async fn record(&self) -> Option<(String, Value)> {
        let filter = json!({"variables": {"tags": {"all_": ["pushpool_pool"]}}, "limit": 200});
        let response = http().post(format!("{}/variables/filter", self.sandbox.prefect)).json(&filter).send().await.unwrap();
        let variables: Vec<Value> = response.json().await.unwrap();
        variables.into_iter().find(|v| v["value"]["pool"] == self.pool.as_str()).map(|v| (v["name"].as_str().unwrap().to_owned(), v["value"].clone()))
    }

    /// Deletes the pool's record: the pool is then as one Prefect's own CLI made.
    pub async fn forget_record(&self) {
        let (name, _) = self.record().await.expect("the pool has a record");
        assert_eq!(self.prefect_send(reqwest::Method::DELETE, &format!("/variables/name/{name}"), Value::Null).await, 204);
    }

    pub async fn block(&self) -> Option<Value> {
        self.prefect_get(&format!("/block_types/slug/aws-credentials/block_documents/name/{}-aws-credentials", self.pool)).await
    }

    /// The block's secret access key (read with include_secrets, for leak checks only).
    pub async fn block_secret(&self) -> String {
        let path = format!("/block_types/slug/aws-credentials/block_documents/name/{}-aws-credentials?include_secrets=true", self.pool);
        let block = self.prefect_get(&path).await.expect("block exists");
        block["data"]["aws_secret_access_key"].as_str().unwrap().to_owned()
    }

    pub async fn work_pool(&self) -> Option<Value> {
        self.prefect_get(&format!("/work_pools/{}", self.pool)).await
    }

    /// Validates a plan `document` against `schemas/plan.v2.json` with Python's jsonschema.
    pub fn assert_matches_schema(&self, document: &str) {
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/plan.v2.json");
        let script = "import json, sys, jsonschema\njsonschema.validate(json.loads(sys.argv[2]), json.load(open(sys.argv[1])))";
        let output = self.python(script, &[schema.to_str().unwrap(), document]);
        assert!(output.status.success(), "the plan does not match its schema: {}", String::from_utf8_lossy(&output.stderr));
    }

    /// Runs Python from the sandbox's virtualenv (Prefect's own client) against the server, or,
    /// for a world [on Prefect Cloud](World::on_cloud), against its workspace on the Cloud-shaped
    /// front, directly, with the user key: Prefect's client then works in its Cloud mode.
    pub fn python(&self, script: &str, args: &[&str]) -> Output {
        let mut command = Command::new(&self.sandbox.python);
        match &self.cloud {
            Some(cloud) => command
                .env("PREFECT_API_URL", cloud.workspace_url(&cloud.cloud_api_url, &cloud.workspace_id))
                .env("PREFECT_API_KEY", &cloud.keys.user)
                .env("PREFECT_CLOUD_API_URL", &cloud.cloud_api_url),
            None => command.env("PREFECT_API_URL", &self.sandbox.prefect),
        };
        command
            .arg("-c")
            .arg(script)
            .args(args)
            .env("PREFECT_HOME", self.home.path().join("python-prefect-home"))
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
            .env("DO_NOT_TRACK", "1")
            .output()
            .unwrap()
    }
}

/// What a pushpool run printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "pushpool failed\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Asserts that none of `secrets` appears in anything the run printed.
    pub fn assert_no_secret(&self, secrets: &[&str]) {
        for secret in secrets {
            assert!(!secret.is_empty());
            assert!(!self.all().contains(secret), "a secret leaked into the output:\n{}", self.all());
        }
    }
}

/// A new moto account: STS AssumeRole into a random account id gives credentials that moto
/// maps to that account.
pub async fn fresh_account(moto: &str) -> Account {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let id = format!("{:06}{:06}", std::process::id() % 1_000_000, (nanos / 1000 + COUNTER.fetch_add(1, Ordering::SeqCst) * 7919) % 1_000_000);
    let config = base_config(moto, "testing", "testing", None).await;
    let sts = aws_sdk_sts::Client::new(&config);
    let assumed = sts.assume_role().role_arn(format!("arn:aws:iam::{id}:role/pushpool-test")).role_session_name("pushpool-test").send().await.expect("moto's STS answers");
    let credentials = assumed.credentials().unwrap();
    Account {
        id,
        access_key: credentials.access_key_id().to_owned(),
        secret_key: credentials.secret_access_key().to_owned(),
        session_token: Some(credentials.session_token().to_owned()),
    }
}

async fn base_config(moto: &str, key: &str, secret: &str, token: Option<&str>) -> aws_config::SdkConfig {
    base_config_in(moto, key, secret, token, "us-east-1").await
}

async fn base_config_in(moto: &str, key: &str, secret: &str, token: Option<&str>, region: &str) -> aws_config::SdkConfig {
    let credentials = aws_sdk_sts::config::Credentials::new(key, secret, token.map(str::to_owned), None, "pushpool-tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(moto)
        .credentials_provider(credentials)
        .load()
        .await
}

/// SDK clients of one account, straight to moto.
pub struct Clients {
    pub iam: aws_sdk_iam::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

pub async fn clients(moto: &str, account: &Account) -> Clients {
    clients_in(moto, account, "us-east-1").await
}

/// SDK clients of one account in `region`, straight to moto.
pub async fn clients_in(moto: &str, account: &Account, region: &str) -> Clients {
    let config = base_config_in(moto, &account.access_key, &account.secret_key, account.session_token.as_deref(), region).await;
    Clients {
        iam: aws_sdk_iam::Client::new(&config),
        ec2: aws_sdk_ec2::Client::new(&config),
        ecs: aws_sdk_ecs::Client::new(&config),
        ecr: aws_sdk_ecr::Client::new(&config),
        secrets: aws_sdk_secretsmanager::Client::new(&config),
        logs: aws_sdk_cloudwatchlogs::Client::new(&config),
    }
}

impl Clients {
    /// Deletes the default VPC and everything in it, for the "fresh account" case.
    pub async fn delete_default_vpc(&self) {
        let vpcs = self.ec2.describe_vpcs().send().await.unwrap();
        for vpc in vpcs.vpcs().iter().filter(|v| v.is_default() == Some(true)) {
            let id = vpc.vpc_id().unwrap();
            let filter = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(id).build();
            let subnets = self.ec2.describe_subnets().filters(filter.clone()).send().await.unwrap();
            for subnet in subnets.subnets() {
                self.ec2.delete_subnet().subnet_id(subnet.subnet_id().unwrap()).send().await.unwrap();
            }
            self.ec2.delete_vpc().vpc_id(id).send().await.unwrap();
        }
    }

    /// Gives the default VPC an internet gateway and a default route in its main table.
    pub async fn connect_default_vpc(&self) -> (String, String) {
        let vpcs = self.ec2.describe_vpcs().send().await.unwrap();
        let vpc = vpcs.vpcs().iter().find(|v| v.is_default() == Some(true)).unwrap().vpc_id().unwrap().to_owned();
        let igw = self.ec2.create_internet_gateway().send().await.unwrap();
        let igw = igw.internet_gateway().unwrap().internet_gateway_id().unwrap().to_owned();
        self.ec2.attach_internet_gateway().internet_gateway_id(&igw).vpc_id(&vpc).send().await.unwrap();
        let filter = aws_sdk_ec2::types::Filter::builder().name("vpc-id").values(&vpc).build();
        let tables = self.ec2.describe_route_tables().filters(filter).send().await.unwrap();
        let main = tables.route_tables().iter().find(|t| t.associations().iter().any(|a| a.main() == Some(true))).unwrap().route_table_id().unwrap().to_owned();
        self.ec2.create_route().route_table_id(&main).destination_cidr_block("0.0.0.0/0").gateway_id(&igw).send().await.unwrap();
        (vpc, igw)
    }

    pub async fn vpcs_named(&self, name: &str) -> Vec<aws_sdk_ec2::types::Vpc> {
        let filter = aws_sdk_ec2::types::Filter::builder().name("tag:Name").values(name).build();
        self.ec2.describe_vpcs().filters(filter).send().await.unwrap().vpcs().to_vec()
    }

    pub async fn access_keys(&self, user: &str) -> Vec<String> {
        let keys = self.iam.list_access_keys().user_name(user).send().await.unwrap();
        keys.access_key_metadata().iter().map(|k| k.access_key_id().unwrap().to_owned()).collect()
    }
}

/// Tags as a sorted list of "key=value".
pub fn tag_pairs<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut pairs: Vec<String> = tags.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    pairs
}

/// The actions an operator policy of `policies/aws/` grants.
pub fn policy_actions(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/aws").join(file)).unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    document["Statement"].as_array().unwrap().iter().flat_map(|s| s["Action"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned())).collect()
}

/// The fake docker's log: one JSON object per invocation.
pub fn docker_calls(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A moto server of a test's own, for what cannot share the sandbox's (IAM enforcement is
/// global to a server). Stopped when dropped.
pub struct PrivateMoto {
    child: std::process::Child,
    pub url: String,
}

impl PrivateMoto {
    pub async fn start() -> Self {
        let sandbox = Sandbox::get();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let moto_server = Path::new(&sandbox.python).with_file_name("moto_server");
        let child = Command::new(moto_server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let url = format!("http://127.0.0.1:{port}");
        let moto = Self { child, url };
        for _ in 0..100 {
            if http().get(format!("{}/moto-api/", moto.url)).send().await.is_ok_and(|r| r.status().is_success()) {
                return moto;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("a private moto server did not start on port {port}");
    }

    /// Turns IAM enforcement on: from now on every call needs a policy that allows it.
    pub async fn enforce_iam(&self) {
        let response = http().post(format!("{}/moto-api/reset-auth", self.url)).body("0").send().await.unwrap();
        assert!(response.status().is_success());
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
