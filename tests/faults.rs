//! Faults and crashes: throttling and errors injected per AWS action by the sandbox proxy,
//! and the process killed right after each write of a fresh run. Against moto and the real
//! Prefect server; each test in its own moto account.

mod support;

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use serde_json::{Value, json};
use support::{Channel, World, hold_group_after, kill_after_writes, unique};

const USER: &str = "prefect-ecs-user";

/// What a provisioned account holds, with ids left out, for comparing end states.
async fn dump(world: &World) -> Value {
    let aws = world.clients().await;
    let roles: Vec<String> = aws.iam.list_roles().send().await.unwrap().roles().iter().map(|r| r.role_name().to_owned()).collect();
    let users = aws.iam.list_users().send().await.unwrap();
    let mut keys = BTreeMap::new();
    let mut marks = Vec::new();
    for user in users.users() {
        let name = user.user_name();
        keys.insert(name.to_owned(), aws.access_keys(name).await.len());
        let tags = aws.iam.list_user_tags().user_name(name).send().await.unwrap();
        marks.extend(tags.tags().iter().filter(|t| t.key().contains("pending")).map(|t| t.key().to_owned()));
    }
    let policies = aws.iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await.unwrap();
    let policies: Vec<String> = policies.policies().iter().map(|p| p.policy_name().unwrap_or_default().to_owned()).collect();
    let vpcs = aws.vpcs_named("prefect-ecs-vpc").await;
    let vpc = vpcs.first().and_then(|v| v.vpc_id()).unwrap_or_default().to_owned();
    let in_vpc = || Filter::builder().name("vpc-id").values(&vpc).build();
    let subnets = aws.ec2.describe_subnets().filters(in_vpc()).send().await.unwrap().subnets().len();
    let gateways = aws.ec2.describe_internet_gateways().send().await.unwrap().internet_gateways().len();
    let tables = aws.ec2.describe_route_tables().filters(in_vpc()).send().await.unwrap();
    let routed = tables.route_tables().iter().filter(|t| t.routes().iter().any(|r| r.gateway_id().is_some_and(|g| g.starts_with("igw-")))).count();
    let groups = aws.ec2.describe_security_groups().filters(in_vpc()).send().await.unwrap();
    let groups: Vec<String> = groups.security_groups().iter().map(|g| g.group_name().unwrap_or_default().to_owned()).collect();
    let clusters = aws.ecs.list_clusters().send().await.unwrap().cluster_arns().len();
    let repositories = aws.ecr.describe_repositories().send().await.unwrap().repositories().len();
    let pool = world.work_pool().await;
    let block = world.block().await;
    let defaults = pool.as_ref().map(|p| p["base_job_template"]["variables"]["properties"].clone()).unwrap_or(Value::Null);
    let key_in_block = block.as_ref().and_then(|b| b["data"]["aws_access_key_id"].as_str()).map(str::to_owned);
    let key_exists = match &key_in_block {
        Some(key) => aws.access_keys(USER).await.contains(key),
        None => false,
    };
    json!({
        "roles": roles, "keys": keys, "pending_marks": marks, "policies": policies, "vpcs": vpcs.len(), "subnets": subnets,
        "gateways": gateways, "routed_tables": routed, "groups": groups, "clusters": clusters, "repositories": repositories,
        "pool": pool.is_some(), "pool_uses_block": block.as_ref().map(|b| defaults["aws_credentials"]["default"]["$ref"]["block_document_id"] == b["id"]),
        "pool_vpc_is_ours": defaults["vpc_id"]["default"] == json!(vpc),
        "pool_subnets": defaults["network_configuration"]["default"]["awsvpcConfiguration"]["subnets"].as_array().map(Vec::len),
        "block_key_exists": key_exists,
    })
}

/// Runs `work-pool create` in `world`, its AWS and Prefect channels frozen together right after
/// the k-th write, and kills it there.
async fn create_killed_after(world: &World, k: usize) {
    let group = unique("crash-group");
    let aws = Channel::open_in(&world.sandbox, &world.moto, Some(&group)).await;
    let prefect = Channel::open_in(&world.sandbox, &world.sandbox.prefect, Some(&group)).await;
    hold_group_after(&world.sandbox, &group, k).await;
    let mut command = world.command(&["work-pool", "create", &world.pool, "--type", "ecs:push", "--provision-infra", "--yes"]);
    command.env("AWS_ENDPOINT_URL", aws.url()).env("PREFECT_API_URL", format!("{}/api", prefect.url()));
    kill_after_writes(&mut command, &[&aws, &prefect], k).await;
}

/// A world on a fresh account whose default VPC is gone: every resource is pushpool's to make.
async fn fresh(prefix: &str) -> World {
    let world = World::new(prefix).await;
    world.clients().await.delete_default_vpc().await;
    world
}

/// A fresh world provisioned without faults, and the dump of its end state.
async fn clean_run(prefix: &str) -> (World, Value) {
    let world = fresh(prefix).await;
    world.create(&["--yes"]).ok();
    let end = dump(&world).await;
    (world, end)
}

#[tokio::test]
async fn every_aws_action_throttled_twice_still_provisions_the_same_end_state() {
    let world = fresh("throttle").await;
    world.aws.set_faults(json!({"*": {"kind": "throttle", "times": 2}})).await;
    let run = world.create(&["--yes"]);
    run.ok();
    let calls = world.aws.calls().await;
    let throttled = calls.iter().filter(|c| c.fault.as_deref() == Some("throttle")).count();
    let actions: std::collections::BTreeSet<&str> = calls.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(throttled, 2 * actions.len(), "each action was throttled twice: {actions:?}");
    println!("throttled twice each: {} AWS actions", actions.len());
    world.aws.set_faults(json!({})).await;

    let (_, expected) = clean_run("throttle-clean").await;
    assert_eq!(dump(&world).await, expected);
}

/// The AWS write actions of a fresh run, in the order they were made.
async fn fresh_run_writes() -> Vec<String> {
    let (world, _) = clean_run("writes").await;
    let mut actions: Vec<String> = Vec::new();
    for call in world.aws.calls().await.into_iter().filter(|c| c.write) {
        if !actions.contains(&call.action) {
            actions.push(call.action);
        }
    }
    actions
}

#[tokio::test]
async fn a_refused_write_names_the_resource_and_action_and_a_rerun_converges() {
    let (_, expected) = clean_run("refused-clean").await;

    let writes = fresh_run_writes().await;
    println!("refused in turn: {} AWS write actions", writes.len());
    for action in writes {
        let world = fresh("refused").await;
        let message = format!("injected refusal of {action}");
        world.aws.set_faults(json!({ (action.as_str()): {"kind": "error", "status": 400, "code": "ValidationError", "message": message} })).await;
        let run = world.create(&["--yes"]);
        assert_eq!(run.code, 1, "{action}: {}", run.all());
        let service_action = format!(":{action} failed: {message} (ValidationError)");
        assert!(run.stderr.contains(&service_action), "{action}: the error names the action and AWS's answer:\n{}", run.stderr);
        assert!(run.stderr.contains("run the same command again"), "{action}: {}", run.stderr);

        world.aws.set_faults(json!({})).await;
        world.create(&["--yes"]).ok();
        assert_eq!(dump(&world).await, expected, "{action}: the resumed run converges");
    }
}

#[tokio::test]
async fn killed_after_any_write_a_rerun_converges_to_a_clean_runs_end_state() {
    let (clean, expected) = clean_run("crash-clean").await;
    // Successful writes only, as the loop below counts them.
    let succeeded = |calls: Vec<support::Call>| calls.iter().filter(|c| c.write && c.status < 400).count();
    let total = succeeded(clean.aws.calls().await) + succeeded(clean.prefect.calls().await);
    assert!(total > 20, "a fresh run makes {total} writes");
    println!("killed after each of {total} writes");

    let mut orphans_cleaned = 0;
    for k in 1..=total {
        let world = fresh("crash").await;
        create_killed_after(&world, k).await;
        // After the pool is created at most two writes remain: the key's settle (UntagUser, which
        // may come before it) and marking the apply done.
        if k + 2 < total {
            assert!(world.work_pool().await.is_none(), "killed after write {k} of {total}, the run must not have finished");
        }

        let rerun = world.create(&["--yes"]);
        assert_eq!(rerun.code, 0, "killed after write {k}, the re-run failed:\n{}", rerun.all());
        if rerun.stdout.contains("minted by an interrupted run") {
            orphans_cleaned += 1;
        }
        assert_eq!(dump(&world).await, expected, "killed after write {k}");
        let marks = world.marks().await;
        assert!(world.create(&["--yes"]).ok().stdout.contains("Nothing to change"), "killed after write {k}");
        world.assert_no_writes_since(marks).await;
    }
    assert!(orphans_cleaned > 0, "some crash fell between minting a key and storing it, and its key was cleaned up");
}

/// A provisioned world whose block's access key was deactivated since, and that key's id.
async fn with_dead_key(prefix: &str) -> (World, String) {
    let world = World::new(prefix).await;
    world.create(&["--yes"]).ok();
    let dead = world.block().await.unwrap()["data"]["aws_access_key_id"].as_str().unwrap().to_owned();
    let iam = world.clients().await.iam;
    iam.update_access_key().user_name(USER).access_key_id(&dead).status(aws_sdk_iam::types::StatusType::Inactive).send().await.unwrap();
    (world, dead)
}

#[tokio::test]
async fn killed_after_any_write_of_a_key_replacement_a_rerun_deletes_the_dead_key_and_leaves_one() {
    let (clean, _) = with_dead_key("crash-key-clean").await;
    let succeeded = |calls: Vec<support::Call>, from: usize| calls.iter().skip(from).filter(|c| c.write && c.status < 400).count();
    let (aws_from, prefect_from) = clean.marks().await;
    clean.create(&["--yes"]).ok();
    let total = succeeded(clean.aws.calls().await, aws_from) + succeeded(clean.prefect.calls().await, prefect_from);
    println!("killed after each of {total} writes");

    let mut dead_key_cleaned = 0;
    for k in 1..=total {
        let (world, dead) = with_dead_key("crash-key").await;
        // The run that replaces the dead key, killed after its k-th write.
        create_killed_after(&world, k).await;

        let rerun = world.create(&["--yes"]);
        assert_eq!(rerun.code, 0, "killed after write {k}, the re-run failed:\n{}", rerun.all());
        if rerun.stdout.contains(&format!("deletes dead key {dead}, which an interrupted run replaced")) {
            dead_key_cleaned += 1;
        }
        let aws = world.clients().await;
        let held = world.block().await.unwrap()["data"]["aws_access_key_id"].as_str().unwrap().to_owned();
        assert_eq!(aws.access_keys(USER).await, [held.as_str()], "killed after write {k}: one key, the block's");
        let tags = aws.iam.list_user_tags().user_name(USER).send().await.unwrap();
        assert!(!tags.tags().iter().any(|t| t.key().contains("pending")), "killed after write {k}: the mark is cleared");
        let marks = world.marks().await;
        assert!(world.create(&["--yes"]).ok().stdout.contains("Nothing to change"), "killed after write {k}");
        world.assert_no_writes_since(marks).await;
    }
    assert!(dead_key_cleaned > 0, "some crash fell between the block write and the dead key's deletion, and the re-run deleted it");
}

#[tokio::test]
async fn two_runs_started_together_leave_one_set_of_resources() {
    let (_, expected) = clean_run("twin-clean").await;

    let world = fresh("twin").await;
    let args = ["work-pool", "create", world.pool.as_str(), "--type", "ecs:push", "--provision-infra", "--yes"];
    let spawn = || {
        let mut command = world.command(&args);
        command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        command.spawn().unwrap()
    };
    let (first, second) = (spawn(), spawn());
    let runs = [first.wait_with_output().unwrap(), second.wait_with_output().unwrap()].map(support::Run::from);
    for run in &runs {
        world.assert_no_secret_leaked(run);
    }
    let applied = runs.iter().filter(|r| r.code == 0 && r.stdout.contains("Infrastructure successfully provisioned")).count();
    assert_eq!(applied, 1, "exactly one run applies: {runs:?}");
    for run in &runs {
        let refused = run.code == 1 && run.stderr.contains("another pushpool run");
        let idle = run.code == 0 && run.stdout.contains("Nothing to change");
        let applied = run.code == 0 && run.stdout.contains("Infrastructure successfully provisioned");
        assert!(refused || idle || applied, "the other run refuses, saying why, or finds nothing to do:\n{}", run.all());
    }
    assert_eq!(dump(&world).await, expected, "one VPC, one key, one block, one pool");
    assert!(world.create(&["--yes"]).ok().stdout.contains("Nothing to change"));
}
