//! Modal pools whose flows run private images from ECR (`--image-registry ecr`), against moto,
//! the real Prefect server and a fake `modal` client (tests/sandbox/modal-bin) that records its
//! arguments and the files it was handed, and keeps the Secrets of one fake workspace. What
//! these prove about Modal is the client's contract (its commands and flags, as in
//! modal-client's `modal/cli/secret.py`), not Modal's service.
//!
//! Each test works in a Modal environment of its own (MODAL_ENVIRONMENT), so that the default
//! Secret name `prefect-ecr-pull` is one Secret per test.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use support::{Channel, PrivateMoto, Run, World, docker_calls, hold_group_after, kill_after_writes, unique};

const MODAL_TOKEN_SECRET: &str = "as-modal-ecr-7f3e9a1c55d2";
const SECRET_NAME: &str = "prefect-ecr-pull";
const PULL_USER: &str = "prefect-modal-ecr-pull";

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prefect-cloud").join(name).display().to_string()
}

/// A world with a Modal token, a fake Modal workspace and a temporary directory of its own.
struct ModalWorld {
    world: World,
    /// The fake `modal`'s state: its Secrets and the log of its calls.
    modal_state: tempfile::TempDir,
    /// TMPDIR of pushpool's runs: values files must not outlive a run.
    tmp: PathBuf,
}

impl ModalWorld {
    async fn new(prefix: &str) -> Self {
        Self::from(World::new(prefix).await).await
    }

    async fn from(world: World) -> Self {
        world.register_block_type("modal-credentials.block-type.json").await;
        let tmp = world.home.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        Self { world, modal_state: tempfile::tempdir().unwrap(), tmp }
    }

    /// The pushpool command with the Modal token in the environment and, when `with_modal`,
    /// the fake `modal` first on PATH (no other `modal` is on it either way).
    fn command(&self, args: &[&str], with_modal: bool) -> Command {
        let mut command = self.world.command(args);
        let system = std::env::var_os("PATH").unwrap_or_default();
        let mut path: Vec<PathBuf> = Vec::new();
        if with_modal {
            path.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox/modal-bin"));
        }
        path.push(PathBuf::from(&self.world.sandbox.fake_bin));
        path.extend(std::env::split_paths(&system).filter(|dir| !dir.join("modal").exists()));
        command
            .env("PATH", std::env::join_paths(path).unwrap())
            .env("MODAL_TOKEN_ID", "ak-modal-ecr")
            .env("MODAL_TOKEN_SECRET", MODAL_TOKEN_SECRET)
            .env("MODAL_ENVIRONMENT", &self.world.pool)
            .env("FAKE_MODAL_STATE", self.modal_state.path())
            .env("TMPDIR", &self.tmp);
        command
    }

    /// Runs pushpool (with the fake `modal`) and checks that no secret leaked anywhere.
    fn run(&self, args: &[&str]) -> Run {
        self.run_command(&mut self.command(args, true))
    }

    fn run_command(&self, command: &mut Command) -> Run {
        let run = self.world.run_command(command);
        self.assert_no_leak(&run);
        run
    }

    fn create(&self, extra: &[&str]) -> Run {
        let template = fixture("modal-push.base-job-template.json");
        let mut args =
            vec!["work-pool", "create", &self.world.pool, "--type", "modal:push", "--provision-infra", "--image-registry", "ecr", "--base-job-template", &template];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Every secret: the world's, the Modal token, and what the fake Modal workspace holds.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.world.secrets();
        secrets.push(MODAL_TOKEN_SECRET.to_owned());
        secrets.extend(self.modal_secret().and_then(|values| Some(values["AWS_SECRET_ACCESS_KEY"].as_str()?.to_owned())));
        secrets
    }

    /// No secret in the run's output, in a file under the home, in the fake `modal`'s argv; no
    /// values file left in TMPDIR.
    fn assert_no_leak(&self, run: &Run) {
        let secrets = self.secrets();
        self.world.assert_none_leaked(run, &secrets);
        for call in self.modal_calls() {
            let argv = call["argv"].to_string();
            assert!(!secrets.iter().any(|s| argv.contains(s.as_str())), "a secret was on modal's command line: {argv}");
        }
        let left: Vec<_> = std::fs::read_dir(&self.tmp).unwrap().flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "files left in TMPDIR: {left:?}");
    }

    /// The fake `modal`'s calls, oldest first.
    fn modal_calls(&self) -> Vec<Value> {
        let log = std::fs::read_to_string(self.modal_state.path().join("calls.jsonl")).unwrap_or_default();
        log.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    /// The calls that wrote a Secret.
    fn secret_writes(&self) -> Vec<Value> {
        self.modal_calls().into_iter().filter(|c| c["argv"][1] != "list").collect()
    }

    /// The values of the test's Secret in the fake workspace, if it exists.
    fn modal_secret(&self) -> Option<Value> {
        let state: Value = serde_json::from_str(&std::fs::read_to_string(self.modal_state.path().join("secrets.json")).ok()?).ok()?;
        state[&self.world.pool].get(SECRET_NAME).map(|s| s["values"].clone())
    }

    async fn pull_block(&self) -> Option<Value> {
        let path = format!("/block_types/slug/aws-credentials/block_documents/name/{}-ecr-pull-credentials?include_secrets=true", self.world.pool);
        self.world.prefect_get(&path).await
    }

    /// Prefect variables pushpool keeps about this test's pool and Secret.
    async fn records(&self) -> Vec<String> {
        let response = support::http().post(format!("{}/variables/filter", self.world.sandbox.prefect)).json(&json!({"limit": 200})).send().await.unwrap();
        let variables: Vec<Value> = response.json().await.unwrap();
        let needle = self.world.pool.replace('-', "_");
        variables.into_iter().filter_map(|v| v["name"].as_str().map(str::to_owned)).filter(|n| n.contains(&needle)).collect()
    }
}

/// The pull user's keys, its policies and their documents, and the repositories: AWS as the
/// tests compare it.
async fn aws_state(world: &World) -> Value {
    let clients = world.clients().await;
    let keys = match clients.iam.list_access_keys().user_name(PULL_USER).send().await {
        Ok(out) => out.access_key_metadata().iter().map(|k| json!(k.access_key_id())).collect(),
        Err(_) => Vec::new(),
    };
    let policies = clients.iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await.unwrap();
    let repositories = clients.ecr.describe_repositories().send().await.unwrap();
    json!({
        "user": clients.iam.get_user().user_name(PULL_USER).send().await.is_ok(),
        "keys": keys,
        "policies": policies.policies().iter().map(|p| p.policy_name().unwrap()).collect::<Vec<_>>(),
        "repositories": repositories.repositories().iter().map(|r| r.repository_name().unwrap()).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn a_fresh_run_builds_the_pull_path_and_a_rerun_writes_nothing_anywhere() {
    let modal = ModalWorld::new("mecr").await;
    let world = &modal.world;
    let created = modal.create(&["--yes"]);
    assert_eq!(created.code, 0, "{}", created.all());

    // AWS: the repository, the pull user with one key, and a policy that reads that repository only.
    let clients = world.clients().await;
    let repository = clients.ecr.describe_repositories().repository_names("prefect-flows").send().await.unwrap();
    let repository = repository.repositories()[0].clone();
    let keys = clients.iam.list_access_keys().user_name(PULL_USER).send().await.unwrap();
    assert_eq!(keys.access_key_metadata().len(), 1, "one pull key");
    let key_id = keys.access_key_metadata()[0].access_key_id().unwrap().to_owned();
    let policy_arn = format!("arn:aws:iam::{}:policy/{PULL_USER}", world.account.id);
    let version = clients.iam.get_policy().policy_arn(&policy_arn).send().await.unwrap().policy().unwrap().default_version_id().unwrap().to_owned();
    let document = clients.iam.get_policy_version().policy_arn(&policy_arn).version_id(version).send().await.unwrap();
    let document = percent_encoding::percent_decode_str(document.policy_version().unwrap().document().unwrap()).decode_utf8_lossy().into_owned();
    let document: Value = serde_json::from_str(&document).unwrap();
    let statements = document["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 2, "{document}");
    assert_eq!(statements[0]["Action"], "ecr:GetAuthorizationToken");
    assert_eq!(statements[0]["Resource"], "*");
    assert_eq!(statements[1]["Action"], json!(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]));
    assert_eq!(statements[1]["Resource"], repository.repository_arn().unwrap(), "the repository's own ARN, no wildcard");
    let attached = clients.iam.list_attached_user_policies().user_name(PULL_USER).send().await.unwrap();
    assert_eq!(attached.attached_policies().iter().map(|p| p.policy_arn().unwrap()).collect::<Vec<_>>(), [policy_arn.as_str()]);

    // Prefect: the pull key in its block (as Prefect's own client reads it), the Modal token in
    // the pool's block, and no image pinned in the pool.
    let script = "import asyncio, sys\nfrom prefect_aws import AwsCredentials\nc = AwsCredentials.load(sys.argv[1])\nprint(c.aws_access_key_id, c.region_name)";
    let loaded = world.python(script, &[&format!("{}-ecr-pull-credentials", world.pool)]);
    assert!(loaded.status.success(), "{}", String::from_utf8_lossy(&loaded.stderr));
    assert_eq!(String::from_utf8_lossy(&loaded.stdout).trim(), format!("{key_id} us-east-1"));
    let defaults = world.job_variable_defaults().await;
    assert!(defaults["modal_credentials"]["$ref"]["block_document_id"].is_string(), "{defaults}");
    assert!(!defaults.to_string().contains("prefect-flows"), "no image pinned: {defaults}");

    // Modal: one Secret, written from a file only the user could read, holding the block's key.
    let block = modal.pull_block().await.unwrap();
    assert_eq!(
        modal.modal_secret().unwrap(),
        json!({
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": block["data"]["aws_secret_access_key"],
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        })
    );
    let writes = modal.secret_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0]["argv"].as_array().unwrap()[..3], [json!("secret"), json!("create"), json!(SECRET_NAME)]);
    assert_eq!(writes[0]["file"]["mode"], "0o600");
    assert_eq!(writes[0]["environment"], world.pool.as_str(), "the client's own environment");
    assert!(!Path::new(writes[0]["file"]["path"].as_str().unwrap()).exists(), "the values file is gone");

    // Docker and the profile point at the registry; the report prints a prefect.yaml fragment.
    let registry = repository.repository_uri().unwrap().split('/').next().unwrap().to_owned();
    let login = docker_calls(&world.docker_log()).into_iter().find(|c| c["argv"][0] == "login").expect("docker logged in");
    assert_eq!(login["argv"].as_array().unwrap().last().unwrap(), registry.as_str());
    assert!(std::fs::read_to_string(world.profiles_path()).unwrap().contains(&format!("PREFECT_DEPLOYMENTS_DEFAULT_DOCKER_BUILD_NAMESPACE = \"{registry}\"")));
    for line in [
        format!("image_name: \"{}\"", repository.repository_uri().unwrap()),
        "platform: linux/amd64".to_owned(),
        "tag: \"{{ image-tag.stdout }}\"".to_owned(),
        format!("aws_secret: \"{SECRET_NAME}\""),
        format!("name: \"{}\"", world.pool),
        "tag: \"{{ build-image.image }}\"".to_owned(),
    ] {
        assert!(created.stdout.contains(&line), "the report lacks `{line}`:\n{}", created.stdout);
    }
    assert!(!created.stdout.contains(":latest"), "no advice to push a `latest` tag, which Modal would cache:\n{}", created.stdout);
    assert!(created.stdout.contains(&format!("│ Modal   ┆ + create ┆ Modal Secret    ┆ {SECRET_NAME}")), "{}", created.stdout);

    // A re-run (the add-on remembered) writes nothing: not in AWS, Prefect, nor Modal.
    let marks = world.marks().await;
    let rerun = modal.run(&["work-pool", "provision-infra", &world.pool, "--yes"]);
    assert_eq!(rerun.code, 0, "{}", rerun.all());
    assert!(rerun.stdout.contains("Nothing to change"), "{}", rerun.stdout);
    world.assert_no_writes_since(marks).await;
    assert_eq!(modal.secret_writes().len(), 1, "the Secret was not written again");
}

#[tokio::test]
async fn a_deleted_key_is_replaced_and_the_secret_rewritten_with_the_new_one() {
    let modal = ModalWorld::new("mecrkey").await;
    let world = &modal.world;
    modal.create(&["--yes"]).ok();
    let clients = world.clients().await;
    let old = clients.iam.list_access_keys().user_name(PULL_USER).send().await.unwrap().access_key_metadata()[0].access_key_id().unwrap().to_owned();
    clients.iam.delete_access_key().user_name(PULL_USER).access_key_id(&old).send().await.unwrap();

    let plan = modal.run(&["work-pool", "provision-infra", &world.pool, "--dry-run"]);
    assert!(plan.stdout.contains(&format!("which no longer exists on IAM user {PULL_USER}")), "{}", plan.stdout);
    assert!(plan.stdout.contains("takes the new values of block"), "the Secret is planned as an update:\n{}", plan.stdout);
    let run = modal.run(&["work-pool", "provision-infra", &world.pool, "--yes"]);
    assert_eq!(run.code, 0, "{}", run.all());

    let keys = clients.iam.list_access_keys().user_name(PULL_USER).send().await.unwrap();
    assert_eq!(keys.access_key_metadata().len(), 1, "the old key is not replaced by two");
    let new = keys.access_key_metadata()[0].access_key_id().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(modal.modal_secret().unwrap()["AWS_ACCESS_KEY_ID"], new.as_str());
    assert_eq!(modal.modal_secret().unwrap()["AWS_SECRET_ACCESS_KEY"], modal.pull_block().await.unwrap()["data"]["aws_secret_access_key"]);
    assert_eq!(modal.secret_writes().len(), 2);
    let again = modal.run(&["work-pool", "provision-infra", &world.pool, "--yes"]);
    assert!(again.stdout.contains("Nothing to change"), "{}", again.all());
}

#[tokio::test]
async fn without_the_modal_client_the_plan_says_how_to_install_it_and_nothing_is_minted() {
    let modal = ModalWorld::new("mecrcli").await;
    let world = &modal.world;
    let template = fixture("modal-push.base-job-template.json");
    let args = ["work-pool", "create", &world.pool, "--type", "modal:push", "--provision-infra", "--image-registry", "ecr", "--base-job-template", &template];
    let marks = world.marks().await;
    for extra in ["--dry-run", "--yes"] {
        let mut all = args.to_vec();
        all.push(extra);
        let run = modal.run_command(&mut modal.command(&all, false));
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(run.stderr.contains(&format!("Modal Secret {SECRET_NAME}: needs the `modal` command-line client, which is not on PATH")), "{}", run.stderr);
        assert!(run.stderr.contains("pip install modal"), "{}", run.stderr);
    }
    world.assert_no_writes_since(marks).await;
    assert_eq!(aws_state(world).await, json!({"user": false, "keys": [], "policies": [], "repositories": []}));
}

#[tokio::test]
async fn without_aws_credentials_the_error_says_the_image_registry_needs_them() {
    let modal = ModalWorld::new("mecraws").await;
    let world = &modal.world;
    let template = fixture("modal-push.base-job-template.json");
    let args = ["work-pool", "create", &world.pool, "--type", "modal:push", "--provision-infra", "--image-registry", "ecr", "--base-job-template", &template, "--yes"];
    let mut command = modal.command(&args, true);
    for variable in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        command.env_remove(variable);
    }
    command.env("AWS_CONFIG_FILE", "/nonexistent").env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    let marks = world.marks().await;
    let run = modal.run_command(&mut command);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("AWS credentials"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("work pool '{}' needs aws for --image-registry ecr", world.pool)), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;
    assert!(modal.modal_calls().is_empty(), "Modal was not even listed");

    // The pool type alone needs no AWS: without the flag the same machine makes the pool.
    let plain = ["work-pool", "create", &world.pool, "--type", "modal:push", "--provision-infra", "--base-job-template", &template, "--yes"];
    let mut command = modal.command(&plain, true);
    command.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY").env_remove("AWS_SESSION_TOKEN");
    modal.run_command(&mut command).ok();
}

#[tokio::test]
async fn a_dry_run_and_a_plan_write_nothing_and_name_every_part() {
    let modal = ModalWorld::new("mecrdry").await;
    let world = &modal.world;
    let marks = world.marks().await;
    let dry = modal.create(&["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.all());
    for part in ["ECR repository", "prefect-flows", PULL_USER, "IAM access key", "-ecr-pull-credentials", "Modal Secret", SECRET_NAME, "modal-credentials"] {
        assert!(dry.stdout.contains(part), "the plan lacks {part}:\n{}", dry.stdout);
    }
    // A pools file says the same as the flag.
    let pools = world.home.path().join("pools.toml");
    let entry = format!(
        "[[pool]]\nname = \"{}\"\ntype = \"modal:push\"\nimage_registry = \"ecr\"\nbase_job_template = {:?}\n",
        world.pool,
        fixture("modal-push.base-job-template.json")
    );
    std::fs::write(&pools, entry).unwrap();
    let plan = modal.run(&["plan", "--file", &pools.display().to_string(), "--output", "json"]);
    let document: Value = serde_json::from_str(&plan.stdout).unwrap_or_else(|e| panic!("{e}: {}", plan.all()));
    world.assert_matches_schema(&plan.stdout);
    assert_eq!(document["pools"][0]["addons"], json!(["image-registry=ecr"]));
    let secret = document["changes"].as_array().unwrap().iter().find(|c| c["kind"] == "modal.secret").unwrap();
    assert_eq!((secret["action"].as_str(), secret["name"].as_str()), (Some("create"), Some(SECRET_NAME)));
    world.assert_no_writes_since(marks).await;
    assert!(modal.secret_writes().is_empty());
    assert_eq!(aws_state(world).await["user"], false);

    // A saved plan keeps the add-on: applying it builds the ECR side and the Secret.
    let saved = world.home.path().join("plan.json");
    modal.run(&["plan", "--file", &pools.display().to_string(), "--out", &saved.display().to_string()]).ok();
    let applied = modal.run(&["apply", &saved.display().to_string()]);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(aws_state(world).await["keys"].as_array().unwrap().len(), 1);
    assert!(modal.modal_secret().is_some(), "the saved plan's Secret was written");
}

#[tokio::test]
async fn a_teardown_returns_to_the_start_and_keeps_a_repository_with_images_unless_forced() {
    let modal = ModalWorld::new("mecrdown").await;
    let world = &modal.world;
    let start = aws_state(world).await;
    let records_before = modal.records().await;
    modal.create(&["--yes"]).ok();
    let called = |calls: &[support::Call]| -> Vec<String> { calls.iter().map(|c| format!("{}:{}", c.service, c.action)).collect() };
    let apply_policy = support::policy_actions("operator-apply.json");
    for action in called(&world.aws.calls().await) {
        assert!(apply_policy.contains(&action), "operator-apply.json lacks {action}, which a Modal pool with ECR images calls");
    }
    let before_teardown = world.aws.mark().await;
    let clients = world.clients().await;
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": format!("sha256:{}", "0".repeat(64))},
        "layers": []});
    clients.ecr.put_image().repository_name("prefect-flows").image_manifest(manifest.to_string()).image_tag("v1").send().await.unwrap();

    let down = modal.run(&["work-pool", "deprovision", &world.pool, "--yes"]);
    assert_eq!(down.code, 0, "{}", down.all());
    assert!(down.stdout.contains("holds 1 image(s); --force deletes them with it"), "{}", down.stdout);
    let mut expected = start.clone();
    expected["repositories"] = json!(["prefect-flows"]);
    assert_eq!(aws_state(world).await, expected, "everything but the repository went");
    assert!(modal.modal_secret().is_none(), "the Modal Secret pushpool wrote went");
    assert!(modal.pull_block().await.is_none() && world.work_pool().await.is_none());
    let teardown_policies = [support::policy_actions("operator-plan.json"), support::policy_actions("operator-teardown.json")].concat();
    for action in called(&world.aws.calls().await[before_teardown..]) {
        assert!(teardown_policies.contains(&action), "the teardown policies lack {action}");
    }

    let forced = modal.run(&["work-pool", "deprovision", &world.pool, "--type", "modal:push", "--image-registry", "ecr", "--force", "--yes"]);
    assert_eq!(forced.code, 0, "{}", forced.all());
    assert_eq!(aws_state(world).await, start);
    assert_eq!(modal.records().await, records_before, "no record of the pool or its Secret is left");
}

#[tokio::test]
async fn a_secret_pushpool_did_not_write_is_never_overwritten_nor_deleted() {
    let modal = ModalWorld::new("mecrown").await;
    let world = &modal.world;
    let state = json!({&world.pool: {SECRET_NAME: {"values": {"AWS_ACCESS_KEY_ID": "theirs"}, "created_at": "2026-01-01 00:00:00"}}});
    std::fs::write(modal.modal_state.path().join("secrets.json"), state.to_string()).unwrap();
    let refused = modal.create(&["--yes"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(refused.stderr.contains("pushpool did not write it"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--set modal_secret=<another name>"), "{}", refused.stderr);
    assert_eq!(aws_state(world).await["keys"], json!([]), "nothing was minted");

    let other = modal.create(&["--set", "modal_secret=team-pull", "--yes"]);
    assert_eq!(other.code, 0, "{}", other.all());
    let down = modal.run(&["work-pool", "deprovision", &world.pool, "--yes"]);
    assert_eq!(down.code, 0, "{}", down.all());
    assert_eq!(modal.modal_secret().unwrap(), json!({"AWS_ACCESS_KEY_ID": "theirs"}), "the user's own Secret is untouched");
}

/// With IAM enforcement on (a private moto server), the pull key gets a registry token and can
/// neither create a repository nor push. moto checks ECR actions against the resource `*`
/// only, so the grants scoped to the repository's ARN (BatchGetImage and the rest) cannot be
/// proved by a call here: the first test proves that document instead.
#[tokio::test]
async fn the_pull_key_can_get_a_registry_token_and_cannot_create_or_push() {
    let moto = PrivateMoto::start().await;
    let root = support::Account { id: "123456789012".into(), access_key: "testing".into(), secret_key: "testing".into(), session_token: None };
    let modal = ModalWorld::from(World::on("mecrpriv", moto.url.clone(), root).await).await;
    modal.create(&["--yes"]).ok();
    let block = modal.pull_block().await.unwrap();
    let pull = support::Account {
        id: "123456789012".into(),
        access_key: block["data"]["aws_access_key_id"].as_str().unwrap().to_owned(),
        secret_key: block["data"]["aws_secret_access_key"].as_str().unwrap().to_owned(),
        session_token: None,
    };
    moto.enforce_iam().await;
    let ecr = support::clients(&moto.url, &pull).await.ecr;
    let token = ecr.get_authorization_token().send().await;
    assert!(token.is_ok(), "the pull key gets a registry token: {token:?}");
    let create = ecr.create_repository().repository_name(unique("other")).send().await;
    assert!(format!("{create:?}").contains("AccessDenied"), "{create:?}");
    let push = ecr.initiate_layer_upload().repository_name("prefect-flows").send().await;
    assert!(format!("{push:?}").contains("AccessDenied"), "{push:?}");
    let put = ecr.put_image().repository_name("prefect-flows").image_manifest("{}").image_tag("x").send().await;
    assert!(format!("{put:?}").contains("AccessDenied"), "{put:?}");
}

/// SIGKILL after each write of a fresh run, then a re-run: it converges to the clean run's
/// state, with one key, and the Secret holds the key the block holds.
#[tokio::test]
async fn a_run_killed_at_any_write_converges_on_a_rerun() {
    let template = fixture("modal-push.base-job-template.json");
    let mut k = 1;
    loop {
        let modal = ModalWorld::new("mecrkill").await;
        let world = &modal.world;
        let group = unique("mecr-group");
        let aws = Channel::open_in(&world.sandbox, &world.moto, Some(&group)).await;
        let prefect = Channel::open_in(&world.sandbox, &world.sandbox.prefect, Some(&group)).await;
        hold_group_after(&world.sandbox, &group, k).await;
        let args = ["work-pool", "create", &world.pool, "--type", "modal:push", "--provision-infra", "--image-registry", "ecr", "--base-job-template", &template, "--yes"];
        let mut command = modal.command(&args, true);
        command.env("AWS_ENDPOINT_URL", aws.url()).env("PREFECT_API_URL", format!("{}/api", prefect.url()));
        kill_after_writes(&mut command, &[&aws, &prefect], k).await;
        let writes = aws.writes_since(0).await.len() + prefect.writes_since(0).await.len();

        let rerun = modal.create(&["--yes"]);
        assert_eq!(rerun.code, 0, "killed after write {k}, the re-run failed:\n{}", rerun.all());
        let state = aws_state(world).await;
        assert_eq!(state["keys"].as_array().unwrap().len(), 1, "killed after write {k}: {state}");
        let block = modal.pull_block().await.unwrap();
        assert_eq!(modal.modal_secret().unwrap()["AWS_ACCESS_KEY_ID"], block["data"]["aws_access_key_id"], "killed after write {k}");
        assert_eq!(modal.modal_secret().unwrap()["AWS_SECRET_ACCESS_KEY"], block["data"]["aws_secret_access_key"], "killed after write {k}");
        let again = modal.run(&["work-pool", "provision-infra", &world.pool, "--yes"]);
        assert!(again.stdout.contains("Nothing to change"), "killed after write {k}: {}", again.all());
        if writes < k {
            break; // the run finished before its k-th write: every write was a kill point
        }
        k += 1;
    }
    assert!(k > 8, "a fresh run makes more than 8 writes, each a kill point ({k})");
}

#[tokio::test]
async fn a_repository_a_modal_pool_shares_with_an_ecs_pool_stays_until_the_last_of_them_is_torn_down() {
    for modal_first in [true, false] {
        let modal = ModalWorld::new(if modal_first { "mshare" } else { "mshare2" }).await;
        let world = &modal.world;
        let ecs = format!("{}-ecs", world.pool);
        modal.create(&["--yes"]).ok();
        modal.run(&["work-pool", "create", &ecs, "--type", "ecs:push", "--provision-infra", "--yes"]).ok();
        let repositories = || async {
            let listed = world.clients().await.ecr.describe_repositories().send().await.unwrap();
            listed.repositories().iter().filter_map(|r| r.repository_name()).map(str::to_owned).collect::<Vec<_>>()
        };
        assert_eq!(repositories().await, ["prefect-flows"], "one repository for both pools");
        let (first, last) = if modal_first { (world.pool.clone(), ecs.clone()) } else { (ecs.clone(), world.pool.clone()) };
        // Neither pool's job variables name the repository: the other pool's record does.
        let down = modal.run(&["work-pool", "deprovision", &first, "--yes"]);
        down.ok();
        assert!(down.stdout.contains(&format!("in use by pool '{last}'")), "{}", down.stdout);
        assert_eq!(repositories().await, ["prefect-flows"], "kept for '{last}'");
        let down = modal.run(&["work-pool", "deprovision", &last, "--yes"]);
        down.ok();
        assert_eq!(repositories().await, Vec::<String>::new(), "the last pool's teardown deletes it:\n{}", down.stdout);
    }
}
