//! `work-pool deprovision` against moto and the real Prefect server: shared resources kept
//! while another pool uses them, ownership tags respected, a repository with images kept
//! without --force, a failed delete resumed, and the account back to where it started.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::World;

/// Everything an account and the world's Prefect objects hold, ids included: two equal
/// inventories mean nothing was left behind and nothing else was touched.
async fn inventory(world: &World, pools: &[&str]) -> Value {
    let aws = world.clients().await;
    let roles: Vec<String> = aws.iam.list_roles().send().await.unwrap().roles().iter().map(|r| r.arn().to_owned()).collect();
    let mut users = BTreeMap::new();
    for user in aws.iam.list_users().send().await.unwrap().users() {
        users.insert(user.user_name().to_owned(), aws.access_keys(user.user_name()).await);
    }
    let policies = aws.iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await.unwrap();
    let policies: Vec<&str> = policies.policies().iter().filter_map(|p| p.arn()).collect();
    let ec2 = &aws.ec2;
    let vpcs: Vec<String> = ec2.describe_vpcs().send().await.unwrap().vpcs().iter().filter_map(|v| v.vpc_id()).map(str::to_owned).collect();
    let subnets: Vec<String> = ec2.describe_subnets().send().await.unwrap().subnets().iter().filter_map(|s| s.subnet_id()).map(str::to_owned).collect();
    let gateways = ec2.describe_internet_gateways().send().await.unwrap();
    let gateways: Vec<&str> = gateways.internet_gateways().iter().filter_map(|g| g.internet_gateway_id()).collect();
    let tables = ec2.describe_route_tables().send().await.unwrap();
    let tables: Vec<&str> = tables.route_tables().iter().filter_map(|t| t.route_table_id()).collect();
    let groups = ec2.describe_security_groups().send().await.unwrap();
    let groups: Vec<&str> = groups.security_groups().iter().filter_map(|g| g.group_id()).collect();
    let clusters = aws.ecs.list_clusters().send().await.unwrap();
    let described = aws.ecs.describe_clusters().set_clusters(Some(clusters.cluster_arns().to_vec())).send().await.unwrap();
    let active: Vec<&str> = described.clusters().iter().filter(|c| c.status() == Some("ACTIVE")).filter_map(|c| c.cluster_name()).collect();
    let repositories = aws.ecr.describe_repositories().send().await.unwrap();
    let repositories: Vec<&str> = repositories.repositories().iter().filter_map(|r| r.repository_name()).collect();
    let mut prefect = BTreeMap::new();
    for pool in pools {
        let block = world.prefect_get(&format!("/block_types/slug/aws-credentials/block_documents/name/{pool}-aws-credentials")).await;
        prefect.insert(pool.to_string(), json!({"pool": world.prefect_get(&format!("/work_pools/{pool}")).await.is_some(), "block": block.is_some()}));
    }
    json!({
        "roles": sorted(roles), "users": users, "policies": sorted(policies), "vpcs": sorted(vpcs), "subnets": sorted(subnets),
        "gateways": sorted(gateways), "route_tables": sorted(tables), "security_groups": sorted(groups), "clusters": sorted(active),
        "repositories": sorted(repositories), "prefect": prefect,
    })
}

fn sorted<T: Ord + serde::Serialize>(mut items: Vec<T>) -> Value {
    items.sort();
    json!(items)
}

/// Each change of a JSON teardown plan: id → (action, reason).
fn actions(plan: &str) -> BTreeMap<String, (String, String)> {
    let plan: Value = serde_json::from_str(plan).unwrap_or_else(|e| panic!("{e}: {plan}"));
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), (c["action"].as_str().unwrap().to_owned(), c["reason"].as_str().unwrap().to_owned())))
        .collect()
}

fn create(world: &World, pool: &str) {
    world.run(&["work-pool", "create", pool, "--type", "ecs:push", "--provision-infra", "--yes"]).ok();
}

#[tokio::test]
async fn two_pools_share_resources_and_tearing_both_down_restores_the_account() {
    let world = World::new("teardown").await;
    let (a, b) = (world.pool.clone(), format!("{}-b", world.pool));
    let start = inventory(&world, &[&a, &b]).await;
    create(&world, &a);
    create(&world, &b);
    let secrets = world.secrets();

    // The plan of A's teardown: only what is A's alone goes; what B uses stays, saying why.
    let marks = world.marks().await;
    let plan = world.run(&["work-pool", "deprovision", &a, "--dry-run", "--output", "json"]);
    plan.ok();
    world.assert_no_writes_since(marks).await;
    let planned = actions(&plan.stdout);
    let deleted: Vec<&str> = planned.iter().filter(|(_, (action, _))| action == "delete").map(|(id, _)| id.as_str()).collect();
    assert_eq!(deleted, ["access_key", "credentials", "pool"], "{planned:?}");
    for shared in ["execution_role", "cluster", "vpc", "security_group"] {
        assert_eq!(planned[shared], ("keep".to_owned(), format!("in use by pool '{b}'")), "{shared}");
    }
    assert!(planned["user"].1.contains(&format!("block '{b}-aws-credentials'")), "{:?}", planned["user"]);
    assert!(planned["repository"].1.contains(&format!("pool '{b}'")), "{:?}", planned["repository"]);
    assert!(planned["policy"].1.contains("prefect-ecs-user, which stays"), "{:?}", planned["policy"]);
    assert!(planned["subnets"].1.starts_with("its VPC stays"), "{:?}", planned["subnets"]);

    let run = world.run(&["work-pool", "deprovision", &a, "--yes"]);
    run.ok().assert_no_secret(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(run.stdout.contains("Teardown complete: 3 deleted, 11 kept."), "{}", run.stdout);
    assert!(world.prefect_get(&format!("/work_pools/{a}")).await.is_none());

    // B still works: its plan is empty, and Prefect's own client loads its block and pool.
    let replan = world.run(&["plan", &b, "--type", "ecs:push", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "{}", replan.all());
    let loaded = world.python(
        "import sys, asyncio\nfrom prefect_aws import AwsCredentials\nfrom prefect.client.orchestration import get_client\n\
         creds = AwsCredentials.load(sys.argv[1] + '-aws-credentials')\n\
         async def main():\n    async with get_client() as c:\n        p = await c.read_work_pool(sys.argv[1])\n        print(creds.aws_access_key_id[:4], p.type)\n\
         asyncio.run(main())",
        &[&b],
    );
    assert_eq!(String::from_utf8_lossy(&loaded.stdout).trim(), "AKIA ecs:push", "{}", String::from_utf8_lossy(&loaded.stderr));

    // B's teardown takes everything, dependents first; the account is as it started.
    let run = world.run(&["work-pool", "deprovision", &b, "--yes"]);
    run.ok().assert_no_secret(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
    let order: Vec<&str> = run.stderr.lines().filter_map(|l| l.trim().strip_prefix("✓ ")).collect();
    let at = |what: &str| order.iter().position(|l| l.starts_with(what)).unwrap_or_else(|| panic!("{what} not deleted: {order:?}"));
    assert!(at("work pool") < at("block") && at("block") < at("IAM access key") && at("IAM access key") < at("IAM user"), "{order:?}");
    assert!(at("subnets") < at("VPC") && at("security group") < at("VPC") && at("route table") < at("internet gateway"), "{order:?}");
    assert!(at("IAM policy") < at("IAM role") && at("IAM policy") < at("IAM user"), "{order:?}");
    assert_eq!(inventory(&world, &[&a, &b]).await, start);

    // Idempotent: a second run finds nothing, says so, and writes nothing.
    let marks = world.marks().await;
    // The pool and its block are gone: nothing left in Prefect says which type it was.
    let again = world.run(&["work-pool", "deprovision", &b, "--type", "ecs:push", "--yes", "--detailed-exitcode"]);
    again.ok();
    assert!(again.stdout.contains("Nothing to delete"), "{}", again.stdout);
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn what_pushpool_did_not_create_stays_and_a_repository_with_images_needs_force() {
    let world = World::new("teardown-owned").await;
    create(&world, &world.pool);
    let aws = world.clients().await;
    // The cluster loses its ownership tag, as if someone else had made it; the repository
    // gets an image.
    let cluster = aws.ecs.describe_clusters().clusters("prefect-ecs-cluster").send().await.unwrap();
    let cluster_arn = cluster.clusters()[0].cluster_arn().unwrap().to_owned();
    aws.ecs.untag_resource().resource_arn(&cluster_arn).tag_keys("managed-by").send().await.unwrap();
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"},
        "layers": []});
    aws.ecr.put_image().repository_name("prefect-flows").image_manifest(manifest.to_string()).image_tag("latest").send().await.unwrap();

    // A delete that fails midway names the resource and action; what depends on it is kept.
    world.aws.set_faults(json!({"DeleteSubnet": {"kind": "error", "status": 400, "code": "DependencyViolation", "message": "in use"}})).await;
    let failed = world.run(&["work-pool", "deprovision", &world.pool, "--yes", "--keep-pool"]);
    assert_eq!(failed.code, 1, "{}", failed.all());
    assert!(failed.stderr.contains("ec2:DeleteSubnet failed: in use (DependencyViolation)"), "{}", failed.stderr);
    let not_started = failed.stderr.lines().find(|l| l.trim_start().starts_with("not started:")).unwrap_or_default();
    assert!(not_started.contains("VPC prefect-ecs-vpc"), "{}", failed.stderr);
    assert_eq!(aws.vpcs_named("prefect-ecs-vpc").await.len(), 1, "the VPC stays while its subnets do");
    world.aws.set_faults(json!({})).await;

    let run = world.run(&["work-pool", "deprovision", &world.pool, "--yes", "--keep-pool"]);
    run.ok();
    assert!(run.stdout.contains("kept ECS cluster prefect-ecs-cluster: not created by pushpool"), "{}", run.stdout);
    assert!(run.stdout.contains("kept ECR repository prefect-flows: holds 1 image(s); --force deletes them with it"), "{}", run.stdout);
    assert!(aws.vpcs_named("prefect-ecs-vpc").await.is_empty(), "the resumed teardown finished the network");
    assert!(aws.iam.get_user().user_name("prefect-ecs-user").send().await.is_err(), "the user is gone");
    // The kept pool names nothing that is gone: its defaults are the type's again.
    let pool = world.work_pool().await.expect("--keep-pool keeps the pool");
    let properties = &pool["base_job_template"]["variables"]["properties"];
    for variable in ["cluster", "vpc_id", "execution_role_arn", "aws_credentials"] {
        assert!(properties[variable].get("default").is_none_or(|d| d.is_null() || d == &json!({})), "{variable}: {}", properties[variable]);
    }
    assert!(world.block().await.is_none());

    let forced = world.run(&["work-pool", "deprovision", &world.pool, "--yes", "--force"]);
    forced.ok();
    assert!(forced.stdout.contains("Teardown complete: 2 deleted, 2 kept."), "{}", forced.stdout);
    assert!(aws.ecr.describe_repositories().send().await.unwrap().repositories().is_empty(), "--force took the repository");
    let cluster = aws.ecs.describe_clusters().clusters(&cluster_arn).send().await.unwrap();
    assert_eq!(cluster.clusters()[0].status(), Some("ACTIVE"), "a cluster pushpool did not make is never deleted");
    let done = world.run(&["work-pool", "deprovision", &world.pool, "--type", "ecs:push"]);
    done.ok();
    assert!(done.stdout.contains("Nothing to delete") && done.stdout.contains("kept ECS cluster prefect-ecs-cluster"), "{}", done.stdout);
}
