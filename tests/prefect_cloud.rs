//! Every push type on Prefect Cloud, as the sandbox's Cloud-shaped front models it
//! (tests/sandbox/cloud_front.py: workspace URLs under `PREFECT_CLOUD_API_URL`, API keys, Cloud's
//! `collections/work_pool_types`, its Cloud-only block types and its 429 with `Retry-After`), in
//! front of the real open-source Prefect server, with moto and the GCP and Azure fakes behind.
//!
//! What these prove: pushpool decides "Prefect Cloud" as Prefect does, takes each push type's
//! template from Cloud (not the hybrid twin's), writes the block and job variables a push pool
//! needs there, writes nothing on a re-run, names the account and workspace in the plan, stops
//! before any cloud write when Cloud refuses the key or the workspace, and honours Cloud's rate
//! limit; and Prefect's own Python client, in its Cloud mode against the same front, reads what
//! pushpool wrote. Not the live Prefect Cloud: its real push templates and limits are not public
//! (the front's header says what it models).

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::azure::AzureWorld;
use support::gcp::GcpWorld;
use support::{Run, World};

/// What the front appends to a push type's template description, so that a test can tell
/// Cloud's template for the push type from its hybrid twin's.
fn clouds_template(pool_type: &str) -> String {
    format!("(Prefect Cloud's {pool_type} template)")
}

/// Reads the pool and the block `slug/name` with Prefect's own Python client, in its Cloud mode
/// against the world's workspace on the front: {"server_type", "type", "block_id", "block_fields"}.
fn read_with_prefect_client(world: &World, slug: &str, name: &str) -> Value {
    let script = "import asyncio, json, sys\nfrom prefect.client.orchestration import get_client\nasync def main():\n    async with get_client() as client:\n        pool = await client.read_work_pool(sys.argv[1])\n        block = await client.read_block_document_by_name(sys.argv[3], sys.argv[2])\n        print(json.dumps({'server_type': client.server_type.name, 'type': pool.type, 'block_id': str(block.id), 'block_fields': sorted(block.data)}))\nasyncio.run(main())";
    let output = world.python(script, &[&world.pool, slug, name]);
    assert!(output.status.success(), "Prefect's client could not read the pool and {slug}/{name}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The pool as the server holds it: its type, its template's description and its job variable
/// defaults.
async fn pool(world: &World) -> (String, String, Value) {
    let pool = world.work_pool().await.expect("the pool exists");
    let variables = &pool["base_job_template"]["variables"];
    let defaults = variables["properties"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v["default"].clone())).collect();
    (pool["type"].as_str().unwrap().to_owned(), variables["description"].as_str().unwrap_or_default().to_owned(), defaults)
}

/// Checks what every push pool on Cloud must have: Cloud's template for its type, the block its
/// credentials variable references (read back by Prefect's client in Cloud mode), the header
/// naming the account and workspace, and no note about self-hosted servers.
async fn assert_made_on_cloud(world: &World, run: &Run, pool_type: &str, variable: &str, slug: &str, block: &str) -> Value {
    let cloud = world.cloud.as_ref().unwrap();
    assert!(run.stdout.contains(&format!("Prefect Cloud, account {}, workspace {}", cloud.account_id, cloud.workspace_id)), "{}", run.all());
    assert!(!run.all().contains("push pools run flows only on Prefect Cloud"), "no self-hosted note on Cloud: {}", run.all());
    let (kind, description, defaults) = pool(world).await;
    assert_eq!(kind, pool_type);
    assert!(description.ends_with(&clouds_template(pool_type)), "Cloud's {pool_type} template, not the twin's: {description}");
    let read = read_with_prefect_client(world, slug, block);
    assert_eq!(read["server_type"], "CLOUD", "Prefect's client took the front for Prefect Cloud");
    assert_eq!(read["type"], pool_type);
    assert_eq!(defaults[variable], json!({"$ref": {"block_document_id": read["block_id"]}}), "{defaults}");
    defaults
}

/// PATH with the fake `modal` client and the fake `docker` first, and no other `modal` on it.
fn path_with_fake_modal(world: &World) -> std::ffi::OsString {
    let modal_bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sandbox/modal-bin");
    let system = std::env::var_os("PATH").unwrap_or_default();
    let rest = std::env::split_paths(&system).filter(|dir| !dir.join("modal").exists());
    std::env::join_paths([modal_bin, world.sandbox.fake_bin.clone().into()].into_iter().chain(rest)).unwrap()
}

/// Runs `args` again and checks it says there is nothing to change and writes nothing to Prefect.
async fn assert_rerun_writes_nothing(world: &World, rerun: impl FnOnce() -> Run) {
    let marks = world.marks().await;
    let again = rerun();
    assert!(again.ok().stdout.contains("Nothing to change"), "{}", again.all());
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn ecs_push_on_cloud_gets_clouds_template_its_block_and_role_and_a_rerun_writes_nothing() {
    let world = World::new("cloud-ecs").await.on_cloud(None).await;
    let plan = world.create(&["--dry-run"]);
    assert!(plan.ok().stdout.contains("Prefect Cloud, account"), "{}", plan.all());
    let run = world.create(&["--yes"]);
    run.ok();
    let block = format!("{}-aws-credentials", world.pool);
    let defaults = assert_made_on_cloud(&world, &run, "ecs:push", "aws_credentials", "aws-credentials", &block).await;
    assert!(defaults["execution_role_arn"].as_str().unwrap().contains(&world.account.id), "{defaults}");
    assert_eq!(defaults["cluster"], "prefect-ecs-cluster");
    assert_rerun_writes_nothing(&world, || world.create(&["--yes"])).await;

    // Every call went to the workspace, with the key: none was refused, none was retried.
    let calls = world.prefect.calls().await;
    let cloud = world.cloud.as_ref().unwrap();
    let prefix = format!("/api/accounts/{}/workspaces/{}/", cloud.account_id, cloud.workspace_id);
    let refused: Vec<_> = calls.iter().filter(|c| !c.path.starts_with(&prefix) || matches!(c.status, 401 | 403 | 429)).collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert!(calls.iter().any(|c| c.path.ends_with("/collections/work_pool_types")), "Cloud's listing was read");

    // A teardown works in the workspace too, and a second one finds nothing to delete.
    let teardown = world.run(&["work-pool", "deprovision", &world.pool, "--yes"]);
    assert!(teardown.ok().stdout.contains("Prefect Cloud, account"), "{}", teardown.all());
    assert!(world.work_pool().await.is_none() && world.block().await.is_none(), "the pool and its block are gone");
    assert!(world.run(&["work-pool", "deprovision", &world.pool, "--yes"]).ok().stdout.contains("Nothing to delete"));
}

#[tokio::test]
async fn cloud_run_push_and_cloud_run_v2_push_on_cloud_get_their_own_templates() {
    for pool_type in ["cloud-run:push", "cloud-run-v2:push"] {
        let world = World::new("cloud-cr").await.on_cloud(None).await;
        let gcp = GcpWorld::new("cloud-cr").await;
        let create = ["work-pool", "create", &world.pool, "--type", pool_type, "--provision-infra", "--yes"];
        let run = world.run_gcp(&gcp, &create);
        run.ok();
        let block = format!("{}-push-pool-credentials", world.pool);
        let defaults = assert_made_on_cloud(&world, &run, pool_type, "credentials", "gcp-credentials", &block).await;
        assert_eq!(defaults["region"], "us-central1");
        assert_eq!(world.load_gcp_credentials_with_prefect(&block)["project"], gcp.project.id.as_str(), "prefect-gcp loads it from Cloud");
        assert_rerun_writes_nothing(&world, || world.run_gcp(&gcp, &create)).await;
    }
}

#[tokio::test]
async fn aci_push_on_cloud_with_a_service_account_key_gets_its_block_and_a_rerun_writes_nothing() {
    let world = World::new("cloud-aci").await.on_cloud(None).await;
    let azure = AzureWorld::new("cloud-aci").await;
    let bot = world.cloud.as_ref().unwrap().keys.bot.clone();
    let create = ["work-pool", "create", &world.pool, "--type", "azure-container-instance:push", "--provision-infra", "--yes"];
    let run_as_bot = || world.run_azure_command(&azure, world.azure_command(&azure, &create).env("PREFECT_API_KEY", &bot));
    let run = run_as_bot();
    run.ok();
    let block = format!("{}-push-pool-credentials", world.pool);
    let defaults = assert_made_on_cloud(&world, &run, "azure-container-instance:push", "aci_credentials", "azure-container-instance-credentials", &block).await;
    assert_eq!(defaults["resource_group_name"], "prefect-aci-push-pool-rg");
    assert_rerun_writes_nothing(&world, run_as_bot).await;
}

#[tokio::test]
async fn modal_push_and_coiled_push_on_cloud_need_no_template_file_and_no_block_registration() {
    // Modal: the token from the environment; Cloud has the block type and the template.
    let world = World::new("cloud-modal").await.on_cloud(None).await;
    let create = ["work-pool", "create", &world.pool, "--type", "modal:push", "--provision-infra", "--yes"];
    let modal = |world: &World| {
        let mut command = world.command(&create);
        command.env("MODAL_TOKEN_ID", "ak-cloud-modal").env("MODAL_TOKEN_SECRET", "as-cloud-modal-5e6f7a8b9c");
        world.run_command(&mut command)
    };
    let run = modal(&world);
    run.ok();
    assert!(!run.all().contains("as-cloud-modal-5e6f7a8b9c"));
    let block = format!("{}-modal-credentials", world.pool);
    assert_made_on_cloud(&world, &run, "modal:push", "modal_credentials", "modal-credentials", &block).await;
    assert_rerun_writes_nothing(&world, || modal(&world)).await;

    // Coiled: the token from dask's environment variable.
    let world = World::new("cloud-coiled").await.on_cloud(None).await;
    let create = ["work-pool", "create", &world.pool, "--type", "coiled:push", "--provision-infra", "--yes"];
    let coiled = |world: &World| world.run_command(world.command(&create).env("DASK_COILED__TOKEN", "coiled-cloud-token-1a2b3c4d5e"));
    let run = coiled(&world);
    run.ok();
    assert!(!run.all().contains("coiled-cloud-token-1a2b3c4d5e"));
    let block = format!("{}-coiled-credentials", world.pool);
    let defaults = assert_made_on_cloud(&world, &run, "coiled:push", "credentials", "coiled-credentials", &block).await;
    assert_eq!(defaults["image"], "", "Prefect empties the image default of a Coiled pool");
    assert_rerun_writes_nothing(&world, || coiled(&world)).await;
}

#[tokio::test]
async fn modal_push_with_ecr_images_on_cloud_gets_both_blocks_and_a_rerun_writes_nothing() {
    let world = World::new("cloud-mecr").await.on_cloud(None).await;
    let state = tempfile::tempdir().unwrap();
    let tmp = world.home.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let create = ["work-pool", "create", &world.pool, "--type", "modal:push", "--provision-infra", "--image-registry", "ecr", "--yes"];
    let run_it = || {
        let mut command = world.command(&create);
        command
            .env("PATH", path_with_fake_modal(&world))
            .env("MODAL_TOKEN_ID", "ak-cloud-mecr")
            .env("MODAL_TOKEN_SECRET", "as-cloud-mecr-0a1b2c3d4e")
            .env("MODAL_ENVIRONMENT", &world.pool)
            .env("FAKE_MODAL_STATE", state.path())
            .env("TMPDIR", &tmp);
        world.run_command(&mut command)
    };
    let run = run_it();
    run.ok();
    let block = format!("{}-modal-credentials", world.pool);
    let defaults = assert_made_on_cloud(&world, &run, "modal:push", "modal_credentials", "modal-credentials", &block).await;
    assert!(defaults.get("image").is_none_or(|image| image.is_null() || image == ""), "not pinned to an image: {defaults}");
    let pull = world.prefect_get(&format!("/block_types/slug/aws-credentials/block_documents/name/{}-ecr-pull-credentials", world.pool)).await;
    assert!(pull.is_some(), "the ECR pull key's block is in the workspace");
    let secrets = std::fs::read_to_string(state.path().join("secrets.json")).unwrap_or_default();
    assert!(secrets.contains("prefect-ecr-pull"), "the Modal Secret was written: {secrets}");
    assert_rerun_writes_nothing(&world, run_it).await;
}

/// `work-pool create --provision-infra --yes` of an ECS pool with `env` set, for every kind of
/// failure below (the AWS writes are counted by the world's channel).
fn ecs_create_with(world: &World, env: &[(&str, &str)]) -> Run {
    let mut command: Command = world.command(&["work-pool", "create", &world.pool, "--type", "ecs:push", "--provision-infra", "--yes"]);
    command.envs(env.iter().copied());
    world.run_command(&mut command)
}

#[tokio::test]
async fn a_refused_key_a_workspace_the_key_may_not_use_and_an_account_url_fail_before_any_write() {
    let world = World::new("cloud-refused").await.on_cloud(None).await;
    let cloud = world.cloud.clone().unwrap();
    let api = world.cloud_api_url();

    // A key Cloud does not accept: 401, with `prefect cloud login`; the key itself never shown.
    let wrong_key = "pnu_sandboxwrongkey0123456789abcdefghij";
    let refused = ecs_create_with(&world, &[("PREFECT_API_KEY", wrong_key)]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    assert!(refused.stderr.contains("(401 Unauthorized)") && refused.stderr.contains("prefect cloud login"), "{}", refused.stderr);
    assert!(!refused.all().contains(wrong_key), "the key was printed: {}", refused.all());

    // A workspace of the account the key may not use: 403, naming it and `prefect cloud workspace set`.
    let hidden = cloud.workspace_url(&api, &cloud.hidden_workspace_id);
    let forbidden = ecs_create_with(&world, &[("PREFECT_API_URL", &hidden)]);
    assert_eq!(forbidden.code, 1, "{}", forbidden.all());
    assert!(forbidden.stderr.contains("(403 Forbidden)") && forbidden.stderr.contains("prefect cloud workspace set"), "{}", forbidden.stderr);
    assert!(forbidden.stderr.contains(&cloud.hidden_workspace_id), "{}", forbidden.stderr);

    // An account's URL, no workspace: refused before any call at all.
    let calls_before = (world.aws.mark().await, world.prefect.mark().await);
    let account_only = format!("{api}/accounts/{}", cloud.account_id);
    let no_workspace = ecs_create_with(&world, &[("PREFECT_API_URL", &account_only)]);
    assert_eq!(no_workspace.code, 1, "{}", no_workspace.all());
    assert!(no_workspace.stderr.contains("without a workspace") && no_workspace.stderr.contains("prefect cloud workspace set"), "{}", no_workspace.stderr);
    assert_eq!((world.aws.mark().await, world.prefect.mark().await), calls_before, "no call was made");

    // None of them wrote anything, in AWS or in Prefect.
    world.assert_no_writes_since((0, 0)).await;
    assert!(world.work_pool().await.is_none());
}

#[tokio::test]
async fn a_pools_file_on_a_rate_limited_account_waits_out_every_429_and_converges() {
    // Six requests a second for the whole account: a pools file of four pools makes many more.
    let world = World::new("cloud-limit").await.on_cloud(Some((6, 1))).await;
    let pools: Vec<String> = (0..4).map(|i| format!("{}-{i}", world.pool)).collect();
    let file = world.home.path().join("pools.toml");
    let entries: String = pools.iter().map(|name| format!("[[pool]]\nname = \"{name}\"\ntype = \"coiled:push\"\n\n")).collect();
    std::fs::write(&file, entries).unwrap();
    let file = file.to_str().unwrap();
    let apply = || world.run_command(world.command(&["apply", "--file", file, "--yes"]).env("DASK_COILED__TOKEN", "coiled-limit-token-9f8e7d6c5b"));

    let run = apply();
    run.ok();
    let calls = world.prefect.calls().await;
    let throttled = calls.iter().filter(|c| c.status == 429).count();
    assert!(throttled > 0, "the account's limit was reached: {} calls, none answered 429", calls.len());
    for name in &pools {
        let pool = world.prefect_get(&format!("/work_pools/{name}")).await.expect("every pool exists");
        assert_eq!(pool["type"], "coiled:push");
    }
    let marks = world.marks().await;
    let again = apply();
    assert!(again.ok().stdout.contains("Nothing to change"), "{}", again.all());
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn every_push_type_stops_at_a_refused_key_or_a_hidden_workspace_before_any_cloud_write() {
    let world = World::new("cloud-stop").await.on_cloud(None).await;
    let cloud = world.cloud.clone().unwrap();
    let hidden = cloud.workspace_url(&world.cloud_api_url(), &cloud.hidden_workspace_id);
    let refusals = [("PREFECT_API_KEY", "pnb_sandboxrefused0123456789abcdefghij", "401 Unauthorized"), ("PREFECT_API_URL", hidden.as_str(), "403 Forbidden")];
    let gcp = GcpWorld::new("cloud-stop").await;
    let azure = AzureWorld::new("cloud-stop").await;
    let modal_state = tempfile::tempdir().unwrap();
    let with_modal = path_with_fake_modal(&world);
    let (gcp_mark, azure_marks, marks) = (gcp.project.mark().await, azure.marks().await, world.marks().await);
    for (variable, value, status) in refusals {
        for pool_type in ["cloud-run:push", "cloud-run-v2:push", "azure-container-instance:push", "modal:push", "coiled:push", "modal:push+ecr"] {
            let (kind, ecr) = pool_type.split_once('+').map_or((pool_type, false), |(kind, _)| (kind, true));
            let mut args = vec!["work-pool", "create", &world.pool, "--type", kind, "--provision-infra", "--yes"];
            if ecr {
                args.extend(["--image-registry", "ecr"]);
            }
            let mut command = match kind {
                "cloud-run:push" | "cloud-run-v2:push" => world.gcp_command(&gcp, &args),
                "azure-container-instance:push" => world.azure_command(&azure, &args),
                _ => {
                    let mut command = world.command(&args);
                    command
                        .env("MODAL_TOKEN_ID", "ak-cloud-stop")
                        .env("MODAL_TOKEN_SECRET", "as-cloud-stop-11223344")
                        .env("DASK_COILED__TOKEN", "coiled-cloud-stop-55667788")
                        .env("FAKE_MODAL_STATE", modal_state.path())
                        .env("PATH", &with_modal);
                    command
                }
            };
            command.env(variable, value);
            let run = world.run_command(&mut command);
            assert_eq!(run.code, 1, "{pool_type} with {variable}: {}", run.all());
            assert!(run.stderr.contains(status), "{pool_type} with {variable}: {}", run.stderr);
            assert!(!run.all().contains(value) || variable == "PREFECT_API_URL", "the key was printed");
        }
    }
    assert_eq!(gcp.project.writes_since(gcp_mark).await, Vec::<String>::new(), "nothing written in Google Cloud");
    assert_eq!(azure.writes_since(&azure_marks).await, Vec::<String>::new(), "nothing written in Azure");
    assert!(!modal_state.path().join("calls.jsonl").exists(), "the modal client was never run");
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn the_front_answers_as_prefects_own_cloud_client_expects() {
    // Prefect's CloudClient validates `me/workspaces` into its Workspace model, finds the current
    // workspace by its API URL, reads the work pool types where Prefect's CLI reads them, and
    // raises CloudUnauthorizedError for a key Cloud refuses.
    let world = World::new("cloud-front").await.on_cloud(None).await;
    let script = r#"import asyncio, json, sys
from prefect.client.cloud import get_cloud_client, CloudUnauthorizedError
async def main():
    async with get_cloud_client(infer_cloud_url=True) as client:
        current = await client.read_current_workspace()
        types = await client.read_worker_metadata()
    refused = None
    async with get_cloud_client(api_key="pnu_notakey0000000000000000000000000000") as client:
        try:
            await client.read_workspaces()
        except CloudUnauthorizedError:
            refused = "CloudUnauthorizedError"
    listed = sorted(w["type"] for collection in types.values() for w in collection.values() if w.get("type", "").endswith(":push"))
    print(json.dumps({"workspace": str(current.workspace_id), "account": str(current.account_id), "handle": current.handle, "push_types": listed, "refused": refused}))
asyncio.run(main())"#;
    let output = world.python(script, &[]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let read: Value = serde_json::from_slice(&output.stdout).unwrap();
    let cloud = world.cloud.as_ref().unwrap();
    assert_eq!(read["workspace"], cloud.workspace_id.as_str());
    assert_eq!(read["account"], cloud.account_id.as_str());
    assert_eq!(read["push_types"], json!(["azure-container-instance:push", "cloud-run-v2:push", "cloud-run:push", "coiled:push", "ecs:push", "modal:push"]));
    assert_eq!(read["refused"], "CloudUnauthorizedError");
}
