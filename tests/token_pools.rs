//! Modal and Coiled push pools, against the real Prefect server: no cloud resources, the
//! local token in a credentials block. Every run here has no AWS credentials at all, which
//! proves that a run connects only to the clouds its pool types need. The block types exist
//! only on Prefect Cloud; the tests register them the way Prefect Cloud has them
//! (`tests/fixtures/prefect-cloud/`), after checking the error a server without them gives.
//! Pools start from the templates Prefect Cloud serves, passed with `--base-job-template`
//! (a self-hosted server has none). Tests here run one at a time: one of them removes the
//! block types the others need.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Run, World};
use tokio::sync::Mutex;

/// Held by each test for its whole run (see the module docs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

const MODAL_SECRET_DEFAULT: &str = "as-modal-default-6c1f0e9d2b";
const MODAL_SECRET_WORK: &str = "as-modal-work-93ad71c04e5f";
const MODAL_SECRET_ROTATED: &str = "as-modal-rotated-0b7e55aa12";
const MODAL_SECRET_ENV: &str = "as-modal-env-f00dfeed9921";
const COILED_TOKEN_FILE: &str = "coiled-file-token-5d3c2b1a0f9e";
const COILED_TOKEN_ENV: &str = "coiled-env-token-77aa88bb99cc";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prefect-cloud").join(name)
}

/// The command, with every AWS variable removed and `env` set (an empty value removes it).
fn without_aws(world: &World, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = world.command(args);
    for variable in ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"] {
        command.env_remove(variable);
    }
    command.env("AWS_CONFIG_FILE", "/nonexistent").env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    for (name, value) in env {
        match value.is_empty() {
            true => command.env_remove(name),
            false => command.env(name, value),
        };
    }
    command
}

/// Runs pushpool without AWS credentials and checks that no token secret is in its output nor
/// in any file under the world's home but the token's own configuration files.
fn run(world: &World, args: &[&str], env: &[(&str, &str)]) -> Run {
    let run = world.run_command(&mut without_aws(world, args, env));
    let secrets = [MODAL_SECRET_DEFAULT, MODAL_SECRET_WORK, MODAL_SECRET_ROTATED, MODAL_SECRET_ENV, COILED_TOKEN_FILE, COILED_TOKEN_ENV];
    run.assert_no_secret(&secrets);
    for file in support::files_under(world.home.path()) {
        let name = file.file_name().unwrap().to_string_lossy();
        if name == ".modal.toml" || name.ends_with(".yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(!secrets.iter().any(|s| text.contains(s)), "a token leaked into {}", file.display());
    }
    run
}

/// Removes a block type (and its documents) from the server, as on a server that never had it.
async fn unregister_block_type(world: &World, slug: &str) {
    if let Some(block_type) = world.prefect_get(&format!("/block_types/slug/{slug}")).await {
        let status = world.prefect_send(Method::DELETE, &format!("/block_types/{}", block_type["id"].as_str().unwrap()), json!(null)).await;
        assert!(status < 300, "DELETE block type {slug}: {status}");
    }
}

/// A block document's data with its secrets, read by Prefect's own Python client.
fn read_with_prefect_client(world: &World, slug: &str, name: &str) -> Value {
    let script = "import asyncio, json, sys\nfrom prefect.client.orchestration import get_client\nasync def main():\n    async with get_client() as client:\n        block = await client.read_block_document_by_name(sys.argv[2], sys.argv[1], include_secrets=True)\n        data = {k: (v.get_secret_value() if hasattr(v, 'get_secret_value') else v) for k, v in block.data.items()}\n        print(json.dumps({'id': str(block.id), 'data': data}))\nasyncio.run(main())";
    let output = world.python(script, &[slug, name]);
    assert!(output.status.success(), "Prefect's client could not read {name}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn defaults(pool: &Value) -> Value {
    let properties = pool["base_job_template"]["variables"]["properties"].as_object().unwrap();
    Value::Object(properties.iter().map(|(k, v)| (k.clone(), v.get("default").cloned().unwrap_or(Value::Null))).collect())
}

fn write_modal_config(world: &World, work_secret: &str) {
    let config = format!(
        "[default]\ntoken_id = \"ak-modal-default\"\ntoken_secret = \"{MODAL_SECRET_DEFAULT}\"\n\n[work]\nactive = true\ntoken_id = \"ak-modal-work\"\ntoken_secret = \"{work_secret}\"\n"
    );
    std::fs::write(world.home.path().join(".modal.toml"), config).unwrap();
}

#[tokio::test]
async fn modal_pool_takes_the_active_profiles_token_and_a_changed_token_is_an_update() {
    let _one = ONE_AT_A_TIME.lock().await;
    let world = World::new("modal").await;
    let template = fixture("modal-push.base-job-template.json");
    let template = template.to_str().unwrap();
    let create = ["work-pool", "create", &world.pool, "--type", "modal:push", "--provision-infra", "--base-job-template", template, "--yes"];

    // A server without the block type (any self-hosted one): a clear error, nothing written.
    unregister_block_type(&world, "modal-credentials").await;
    write_modal_config(&world, MODAL_SECRET_WORK);
    let marks = world.marks().await;
    let missing_type = run(&world, &create, &[]);
    assert_eq!(missing_type.code, 1, "{}", missing_type.all());
    assert!(missing_type.stderr.contains("block type 'modal-credentials': is not registered on the Prefect server at"), "{}", missing_type.stderr);
    assert!(missing_type.stderr.contains("Modal push pools need Prefect Cloud"), "{}", missing_type.stderr);
    world.register_block_type("modal-credentials.block-type.json").await;

    // No token anywhere: the error names `modal token new`; nothing written.
    let no_token = run(&world, &create, &[("MODAL_CONFIG_PATH", "/nonexistent/modal.toml")]);
    assert_eq!(no_token.code, 1, "{}", no_token.all());
    assert!(no_token.stderr.contains("modal token new") && no_token.stderr.contains("MODAL_TOKEN_ID"), "{}", no_token.stderr);
    // No template anywhere: a self-hosted server serves none for a push type.
    let args = ["work-pool", "create", &world.pool, "--type", "modal:push", "--provision-infra", "--yes"];
    let no_template = run(&world, &args, &[]);
    assert_eq!(no_template.code, 1, "{}", no_template.all());
    assert!(no_template.stderr.contains("no default base job template") && no_template.stderr.contains("--base-job-template"), "{}", no_template.stderr);
    world.assert_no_writes_since(marks).await;

    // The profile marked active is used; the plan names the token by its id only.
    let created = run(&world, &create, &[]);
    created.ok();
    assert!(created.stdout.contains("ak-modal-work"), "{}", created.stdout);
    let block_name = format!("{}-modal-credentials", world.pool);
    let block = read_with_prefect_client(&world, "modal-credentials", &block_name);
    assert_eq!(block["data"], json!({"token_id": "ak-modal-work", "token_secret": MODAL_SECRET_WORK}));
    let pool = world.work_pool().await.unwrap();
    assert_eq!(pool["type"], "modal:push");
    assert_eq!(defaults(&pool)["modal_credentials"], json!({"$ref": {"block_document_id": block["id"]}}));

    // A re-run writes nothing.
    let marks = world.marks().await;
    let again = run(&world, &create, &[]);
    assert!(again.ok().stdout.contains("Nothing to change"), "{}", again.stdout);
    world.assert_no_writes_since(marks).await;

    // Another profile, then the environment: each an update of the block, shown by field.
    let other = run(&world, &["work-pool", "provision-infra", &world.pool, "--dry-run"], &[("MODAL_PROFILE", "default")]);
    assert!(other.ok().stdout.contains("fields differ: token_id, token_secret"), "{}", other.stdout);
    let from_env = [("MODAL_TOKEN_ID", "ak-modal-env"), ("MODAL_TOKEN_SECRET", MODAL_SECRET_ENV)];
    let env_plan = run(&world, &["work-pool", "provision-infra", &world.pool, "--dry-run", "--output", "json"], &from_env);
    let document: Value = serde_json::from_str(&env_plan.ok().stdout).unwrap();
    assert_eq!(document["targets"][0]["cloud"], "modal");
    assert_eq!(document["targets"][0]["token_id"], "ak-modal-env");
    world.assert_no_writes_since(marks).await;

    // The active profile's secret rotated: only the secret differs, the block is updated.
    write_modal_config(&world, MODAL_SECRET_ROTATED);
    let rotated = run(&world, &["work-pool", "provision-infra", &world.pool, "--yes"], &[]);
    assert!(rotated.ok().stdout.contains("fields differ: token_secret"), "{}", rotated.stdout);
    let block = read_with_prefect_client(&world, "modal-credentials", &block_name);
    assert_eq!(block["data"]["token_secret"], MODAL_SECRET_ROTATED);
}

#[tokio::test]
async fn coiled_pool_takes_the_dask_configuration_token_and_the_environment_wins() {
    let _one = ONE_AT_A_TIME.lock().await;
    let world = World::new("coiled").await;
    world.register_block_type("coiled-credentials.block-type.json").await;
    let template = fixture("coiled-push.base-job-template.json");
    let create = ["work-pool", "create", &world.pool, "--type", "coiled:push", "--provision-infra", "--base-job-template", template.to_str().unwrap(), "--yes"];

    let marks = world.marks().await;
    let none = run(&world, &create, &[]);
    assert_eq!(none.code, 1, "{}", none.all());
    assert!(none.stderr.contains("coiled login") && none.stderr.contains("DASK_COILED__TOKEN"), "{}", none.stderr);
    world.assert_no_writes_since(marks).await;

    // dask merges every YAML file of its directory: the token from one, the workspace from another.
    let dask = world.home.path().join(".config/dask");
    std::fs::create_dir_all(&dask).unwrap();
    std::fs::write(dask.join("coiled.yaml"), format!("coiled:\n  token: {COILED_TOKEN_FILE}\n")).unwrap();
    std::fs::write(dask.join("team.yaml"), "coiled:\n  workspace: data-team\n").unwrap();
    run(&world, &create, &[]).ok();
    let block_name = format!("{}-coiled-credentials", world.pool);
    let block = read_with_prefect_client(&world, "coiled-credentials", &block_name);
    assert_eq!(block["data"], json!({"api_token": COILED_TOKEN_FILE, "workspace": "data-team"}));
    let defaults = defaults(&world.work_pool().await.unwrap());
    assert_eq!(defaults["credentials"], json!({"$ref": {"block_document_id": block["id"]}}));
    assert_eq!(defaults["image"], "", "the template has an image variable: its default is emptied, as Prefect does");

    let marks = world.marks().await;
    assert!(run(&world, &create, &[]).ok().stdout.contains("Nothing to change"));
    world.assert_no_writes_since(marks).await;

    // DASK_COILED__TOKEN wins over the files.
    let changed = run(&world, &["work-pool", "provision-infra", &world.pool, "--yes"], &[("DASK_COILED__TOKEN", COILED_TOKEN_ENV)]);
    assert!(changed.ok().stdout.contains("fields differ: api_token"), "{}", changed.stdout);
    let block = read_with_prefect_client(&world, "coiled-credentials", &block_name);
    assert_eq!(block["data"]["api_token"], COILED_TOKEN_ENV);
}

#[tokio::test]
async fn a_pools_file_plans_ecs_modal_and_coiled_together_and_without_aws_only_ecs_fails() {
    let _one = ONE_AT_A_TIME.lock().await;
    let world = World::new("mixed").await;
    world.register_block_type("modal-credentials.block-type.json").await;
    world.register_block_type("coiled-credentials.block-type.json").await;
    write_modal_config(&world, MODAL_SECRET_WORK);
    let dask = world.home.path().join(".config/dask");
    std::fs::create_dir_all(&dask).unwrap();
    std::fs::write(dask.join("coiled.yaml"), format!("coiled:\n  token: {COILED_TOKEN_FILE}\n")).unwrap();
    let (ecs, modal, coiled) = (format!("{}-ecs", world.pool), format!("{}-modal", world.pool), format!("{}-coiled", world.pool));
    let file = world.home.path().join("pools.toml");
    std::fs::write(
        &file,
        format!(
            "[[pool]]\nname = \"{ecs}\"\ntype = \"ecs:push\"\n\n[[pool]]\nname = \"{modal}\"\ntype = \"modal:push\"\nbase_job_template = \"{}\"\n\n[[pool]]\nname = \"{coiled}\"\ntype = \"coiled:push\"\nbase_job_template = \"{}\"\n",
            fixture("modal-push.base-job-template.json").display(),
            fixture("coiled-push.base-job-template.json").display()
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();

    // With AWS credentials: one plan, every pool and both tokens' targets.
    let plan = world.run(&["plan", "--file", file, "--output", "markdown"]);
    let markdown = &plan.ok().stdout;
    for pool in [&ecs, &modal, &coiled] {
        assert!(markdown.contains(&format!("`{pool}`")), "{markdown}");
    }
    for target in ["AWS account", "Modal token ak-modal-work", "Coiled"] {
        assert!(markdown.contains(target), "{target}: {markdown}");
    }
    world.run(&["apply", "--file", file, "--yes"]).ok();
    for (slug, name) in [("modal-credentials", &modal), ("coiled-credentials", &coiled)] {
        read_with_prefect_client(&world, slug, &format!("{name}-{slug}"));
    }

    // Without AWS credentials: only the ECS pool's part fails, and says so.
    let marks = world.marks().await;
    let failed = run(&world, &["plan", "--file", file], &[("AWS_REGION", "us-east-1")]);
    assert_eq!(failed.code, 1, "{}", failed.all());
    assert!(failed.stderr.contains(&format!("work pool '{ecs}': AWS credentials")), "{}", failed.stderr);
    assert!(!failed.stderr.contains(&format!("work pool '{modal}':")) && !failed.stderr.contains(&format!("work pool '{coiled}':")), "{}", failed.stderr);
    assert!(failed.stderr.contains(&format!("the other pools ('{modal}', '{coiled}') are fine")), "{}", failed.stderr);
    world.assert_no_writes_since(marks).await;
}
