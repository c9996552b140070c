//! A pool lives where it was provisioned, against moto and the real Prefect server: every later
//! run and teardown works there whatever the shell's AWS region says now, a flag against the
//! pool's place is refused before any AWS read, credentials of another account are refused, a
//! pool without a record is placed by what it holds, and a pool that is fully gone says so.

mod support;

use serde_json::json;
use support::{World, clients_in, fresh_account};

const CLUSTER: &str = "prefect-ecs-cluster";

/// Whether the account has an active `prefect-ecs-cluster` in `region`.
async fn cluster_in(world: &World, region: &str) -> bool {
    let ecs = clients_in(&world.moto, &world.account, region).await.ecs;
    let found = ecs.describe_clusters().clusters(CLUSTER).send().await.unwrap();
    found.clusters().iter().any(|c| c.status() == Some("ACTIVE"))
}

#[tokio::test]
async fn a_pool_made_in_another_region_is_rerun_and_torn_down_there_whatever_the_shell_says() {
    let mut world = World::new("placed").await;
    assert_eq!(world.region, "us-east-1", "the shell's region");
    world.create(&["--region", "eu-west-1", "--yes"]).ok();
    assert!(cluster_in(&world, "eu-west-1").await);
    let (_, recorded) = world.record().await.expect("the pool is recorded");
    assert_eq!(recorded["places"], json!([{"cloud": "aws", "account": world.account.id, "region": "eu-west-1"}]));
    assert!(recorded["uses"].as_array().unwrap().iter().any(|k| k == &json!(format!("aws.ecs_cluster|{}/eu-west-1|{CLUSTER}", world.account.id))));

    // The shell moves on; every later run of the pool stays where it is.
    world.region = "us-west-2".into();
    let marks = world.marks().await;
    let rerun = world.run(&["work-pool", "provision-infra", &world.pool, "--yes"]);
    rerun.ok();
    assert!(rerun.stdout.contains("Nothing to change"), "{}", rerun.all());
    world.assert_no_writes_since(marks).await;
    assert!(!cluster_in(&world, "us-west-2").await, "no second copy in the shell's region");

    // A flag that names another place is refused before any read of AWS, naming both places.
    let aws_mark = world.aws.mark().await;
    let moved = world.run(&["work-pool", "provision-infra", &world.pool, "--region", "us-west-2", "--yes"]);
    assert_eq!(moved.code, 1, "{}", moved.all());
    assert!(moved.stderr.contains(&format!("lives in AWS account {}, region eu-west-1 (from the pool's record)", world.account.id)), "{}", moved.stderr);
    assert!(moved.stderr.contains("--region us-west-2 names another place"), "{}", moved.stderr);
    assert!(moved.stderr.contains(&format!("pushpool work-pool deprovision {}", world.pool)), "{}", moved.stderr);
    assert_eq!(world.aws.calls().await.len(), aws_mark, "not one AWS call");

    // A cluster of the same name and marks in the shell's region (what the old bug built) is
    // not the pool's: the teardown looks in eu-west-1 only.
    let decoy = clients_in(&world.moto, &world.account, "us-west-2").await.ecs;
    let tag = |k: &str, v: &str| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build();
    decoy.create_cluster().cluster_name(CLUSTER).tags(tag("managed-by", "pushpool")).tags(tag("prefect.work-pool", &world.pool)).send().await.unwrap();
    let dry = world.run(&["work-pool", "deprovision", &world.pool, "--dry-run"]);
    dry.ok();
    assert!(dry.stdout.contains("region eu-west-1 (from the pool's record)"), "{}", dry.stdout);
    world.run(&["work-pool", "deprovision", &world.pool, "--yes"]).ok();
    assert!(!cluster_in(&world, "eu-west-1").await, "torn down where it lives");
    assert!(cluster_in(&world, "us-west-2").await, "the shell's region untouched");
    assert!(world.record().await.is_none(), "the record goes last");

    // Nothing is left: a second teardown says so, without asking for --type, and writes nothing.
    let marks = world.marks().await;
    let again = world.run(&["work-pool", "deprovision", &world.pool, "--yes"]);
    again.ok();
    assert!(again.stdout.contains("Nothing to delete") && again.stdout.contains("nothing pushpool built for it is left"), "{}", again.all());
    assert!(!again.all().contains("--type"), "{}", again.all());
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn credentials_for_another_account_are_refused_before_any_write() {
    let mut world = World::new("account").await;
    world.create(&["--yes"]).ok();
    let home = world.account.id.clone();
    world.account = fresh_account(&world.moto).await;
    let marks = world.marks().await;
    for args in [vec!["work-pool", "provision-infra", world.pool.as_str(), "--yes"], vec!["work-pool", "deprovision", world.pool.as_str(), "--yes"]] {
        let refused = world.run(&args);
        assert_eq!(refused.code, 1, "{}", refused.all());
        let said = format!("are for account {}, but work pool '{}' lives in account {home} (from the pool's record)", world.account.id, world.pool);
        assert!(refused.stderr.contains(&said), "{}", refused.stderr);
    }
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn a_pool_without_a_record_is_placed_by_its_job_variables_and_block() {
    let mut world = World::new("unrecorded").await;
    world.create(&["--region", "eu-west-1", "--yes"]).ok();
    // As a pool made by Prefect's own CLI, or by a pushpool that kept no places: no record.
    world.forget_record().await;
    world.region = "us-west-2".into();

    let dry = world.run(&["work-pool", "deprovision", &world.pool, "--dry-run"]);
    dry.ok();
    assert!(dry.stdout.contains("region eu-west-1 (from the pool's job variables)"), "{}", dry.stdout);
    let moved = world.run(&["work-pool", "deprovision", &world.pool, "--region", "ap-south-1", "--yes"]);
    assert!(moved.stderr.contains("(from the pool's job variables); --region ap-south-1 names another place"), "{}", moved.stderr);
    world.run(&["work-pool", "deprovision", &world.pool, "--yes"]).ok();
    assert!(!cluster_in(&world, "eu-west-1").await);
    let vpcs = clients_in(&world.moto, &world.account, "eu-west-1").await.vpcs_named("prefect-ecs-vpc").await;
    assert!(vpcs.is_empty(), "the network went too");
}
