//! A pools file whose apply fails for one pool: the others are applied in full, the error
//! names the failed pool, what failed and what was built for it, and a re-run finishes only
//! that pool. Against moto and the Prefect server through the counting proxy, whose fault is
//! matched to one pool's IAM user.

mod support;

use serde_json::{Value, json};
use support::{World, docker_calls};

async fn block_of(world: &World, pool: &str) -> Option<Value> {
    world.prefect_get(&format!("/block_types/slug/aws-credentials/block_documents/name/{pool}-aws-credentials")).await
}

#[tokio::test]
async fn a_refused_write_fails_its_pool_alone_and_a_rerun_finishes_only_that_pool() {
    let world = World::new("fleet-fail").await;
    let [a, b, c] = ["a", "b", "c"].map(|suffix| format!("{}-{suffix}", world.pool));
    let pools = &world.ecs_pools_file(&[a.clone(), b.clone(), c.clone()]);
    let denied = format!("User is not authorized to perform: iam:CreateUser on resource: user {b}");
    world.aws.set_faults(json!({"CreateUser": {"status": 403, "code": "AccessDenied", "message": denied, "match": format!("UserName={b}")}})).await;

    let failed = world.run(&["apply", "--file", pools, "--yes"]);
    assert_eq!(failed.code, 1, "{}", failed.all());
    let error = &failed.stderr;
    assert!(error.contains(&format!("error: work pools: 1 of 3 pools failed ('{b}')")), "{error}");
    assert!(error.contains(&format!("  - work pool '{b}':\n      failed: IAM user {b}: iam:CreateUser failed: {denied} (AccessDenied)")), "{error}");
    let written = error.lines().find(|l| l.trim_start().starts_with("written for it:")).unwrap_or_default();
    for shared in ["ECS cluster prefect-ecs-cluster (shared)", "IAM role PrefectEcsTaskExecutionRole (shared)"] {
        assert!(written.contains(shared), "what was built for the failed pool names {shared}: {error}");
    }
    assert!(!written.contains(&a) && !written.contains(&c), "nothing of the other pools' own: {error}");
    let not_started = error.lines().find(|l| l.trim_start().starts_with("not started for it:")).unwrap_or_default();
    for missing in [format!("IAM policy {b}"), format!("block {b}-aws-credentials"), format!("work pool {b}")] {
        assert!(not_started.contains(&missing), "{missing} was not started: {error}");
    }
    assert!(error.contains(&format!("the other pools were applied in full: '{a}', '{c}'")), "{error}");
    assert!(error.contains("Docker was not logged in to any registry: the run that resumes logs it in"), "{error}");
    assert!(error.contains("fix: fix each cause above, then run the same command again"), "{error}");
    // Progress by pool: two done, one failed, and which.
    assert!(error.contains(&format!("✗ work pool '{b}' failed at IAM user {b}")), "{error}");
    assert!(error.contains("(2/3 pools done, 1 failed)"), "{error}");
    assert!(!error.contains("(3/3 pools done"), "a failed pool is not done: {error}");
    // The fault matched b's CreateUser only: a's and c's went through.
    let creates: Vec<_> = world.aws.calls().await.into_iter().filter(|call| call.action == "CreateUser").collect();
    assert_eq!(creates.iter().filter(|call| call.fault.is_some()).count(), 1, "{creates:?}");
    assert_eq!(creates.iter().filter(|call| call.status == 200).count(), 2, "{creates:?}");
    // The other pools are whole in Prefect; the failed one has neither pool nor block.
    for pool in [&a, &c] {
        let work_pool = world.prefect_get(&format!("/work_pools/{pool}")).await.unwrap_or_else(|| panic!("pool {pool} exists"));
        let block = block_of(&world, pool).await.unwrap_or_else(|| panic!("the block of {pool} exists"));
        let defaults = &work_pool["base_job_template"]["variables"]["properties"];
        assert_eq!(defaults["aws_credentials"]["default"]["$ref"]["block_document_id"], block["id"], "{pool} uses its block");
        assert_eq!(defaults["cluster"]["default"], "prefect-ecs-cluster", "{pool} runs on the shared cluster");
    }
    assert!(world.prefect_get(&format!("/work_pools/{b}")).await.is_none());
    assert!(block_of(&world, &b).await.is_none());
    let logins = || docker_calls(&world.docker_log()).into_iter().filter(|call| call["argv"][0] == "login").count();
    assert_eq!(logins(), 0, "Docker is not logged in after a failed apply");

    // The fault cleared, a re-run plans only the failed pool's missing pieces, then builds them.
    world.aws.set_faults(json!({})).await;
    let plan = world.run(&["plan", "--file", pools, "--output", "json"]);
    let document: Value = serde_json::from_str(&plan.ok().stdout).expect("stdout is only JSON");
    let changes: Vec<&Value> = document["changes"].as_array().unwrap().iter().filter(|change| change["action"] != "reuse").collect();
    assert!(!changes.is_empty(), "{document}");
    for change in &changes {
        assert_eq!(change["pools"], json!([b]), "only the failed pool's pieces change: {change}");
    }
    let marks = world.marks().await;
    let resumed = world.run(&["apply", "--file", pools, "--yes"]);
    resumed.ok();
    let aws = world.aws.writes_since(marks.0).await;
    assert_eq!(aws.iter().filter(|w| *w == "iam CreateUser").count(), 1, "{aws:?}");
    for shared in ["ecs CreateCluster", "iam CreateRole", "ec2 CreateVpc", "ecr CreateRepository"] {
        assert!(!aws.iter().any(|w| w == shared), "{shared} again: {aws:?}");
    }
    assert!(world.prefect_get(&format!("/work_pools/{b}")).await.is_some() && block_of(&world, &b).await.is_some());
    assert_eq!(logins(), 1, "the resumed run logs Docker in to the pools' one registry");

    let marks = world.marks().await;
    let again = world.run(&["apply", "--file", pools, "--yes"]);
    assert!(again.ok().stdout.contains("Nothing to change"), "{}", again.stdout);
    world.assert_no_writes_since(marks).await;
}
