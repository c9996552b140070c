//! Every list pushpool makes reads all its pages, against moto and the real Prefect server
//! behind a proxy channel that pages small (tests/sandbox/proxy.py): two items a page for the
//! AWS list and describe calls (moto itself pages almost none of them), and a `limit` of two
//! on every Prefect filter request. What pushpool needs is put past the first page each time,
//! so a client that read only the first page would plan a second VPC, attach a policy again,
//! or delete what another pool uses.

mod support;

use serde_json::json;
use support::World;

const MANAGED: &str = "arn:aws:iam::aws:policy/";

fn create(world: &World, pool: &str) {
    world.run(&["work-pool", "create", pool, "--type", "ecs:push", "--provision-infra", "--yes"]).ok();
}

#[tokio::test]
async fn with_two_item_pages_a_rerun_writes_nothing_and_a_teardown_keeps_what_a_pool_on_a_later_page_uses() {
    let world = World::new("paging").await;
    world.aws.page(2).await;
    world.prefect.page(2).await;
    let aws = world.clients().await;
    // Three VPCs before pushpool's own: it is on the third page of DescribeVpcs, and the CIDRs it
    // must not take are on the first two.
    for cidr in ["10.0.0.0/16", "10.1.0.0/16", "10.2.0.0/16"] {
        aws.ec2.create_vpc().cidr_block(cidr).send().await.unwrap();
    }
    let (a, b) = (world.pool.clone(), format!("zz-{}", world.pool));
    create(&world, &a);
    let vpc_ids = || async { aws.vpcs_named("prefect-ecs-vpc").await.iter().filter_map(|v| v.vpc_id()).map(str::to_owned).collect::<Vec<_>>() };
    let vpcs = vpc_ids().await;
    assert_eq!(vpcs.len(), 1, "{vpcs:?}");

    // Policies that sort before pushpool's (IAM lists attached policies by name): its own are
    // then on the second page of the user's and the role's.
    for policy in ["AmazonDynamoDBReadOnlyAccess", "AmazonEC2ReadOnlyAccess", "AmazonS3ReadOnlyAccess"] {
        aws.iam.attach_user_policy().user_name("prefect-ecs-user").policy_arn(format!("{MANAGED}{policy}")).send().await.unwrap();
    }
    for policy in ["AmazonDynamoDBReadOnlyAccess", "AmazonEC2ReadOnlyAccess"] {
        aws.iam.attach_role_policy().role_name("PrefectEcsTaskExecutionRole").policy_arn(format!("{MANAGED}{policy}")).send().await.unwrap();
    }

    let marks = world.marks().await;
    let again = world.run(&["work-pool", "provision-infra", &a, "--yes"]);
    again.ok();
    assert!(again.all().contains("Nothing to change"), "{}", again.all());
    world.assert_no_writes_since(marks).await;
    let calls = world.aws.calls().await;
    let pages = |action: &str| calls.iter().skip(marks.0).filter(|c| c.action == action).count();
    assert!(pages("DescribeVpcs") >= 3, "the VPCs were read in pages of two: {} calls", pages("DescribeVpcs"));
    assert!(pages("ListAttachedUserPolicies") >= 2, "the user's policies were read in pages of two");
    assert_eq!(vpc_ids().await, vpcs, "no second VPC");

    // Pool B shares A's resources, and sorts after A and two more pools: it is on the second page
    // of the work pools A's teardown reads to know what is in use.
    create(&world, &b);
    let others = [format!("{a}-other-1"), format!("{a}-other-2")];
    for other in &others {
        assert_eq!(world.prefect_send(reqwest::Method::POST, "/work_pools/", json!({"name": other, "type": "process"})).await, 201);
    }
    let run = world.run(&["work-pool", "deprovision", &a, "--yes"]);
    for other in &others {
        world.prefect_send(reqwest::Method::DELETE, &format!("/work_pools/{other}"), json!({})).await;
    }
    run.ok();
    for kept in ["ECS cluster prefect-ecs-cluster", "IAM role PrefectEcsTaskExecutionRole"] {
        assert!(run.stdout.contains(&format!("kept {kept}: in use by pool '{b}'")), "{kept}\n{}", run.stdout);
    }
    assert_eq!(vpc_ids().await, vpcs, "B's network stays");
    let prefect_pages = world.prefect.calls().await.iter().filter(|c| c.action.ends_with("/work_pools/filter")).count();
    assert!(prefect_pages >= 3, "the work pools were read in pages of two: {prefect_pages} calls");

    // B's plan is still empty: everything it has is found, past the first pages.
    let replan = world.run(&["plan", &b, "--type", "ecs:push", "--detailed-exitcode"]);
    assert_eq!(replan.code, 0, "{}", replan.all());
    world.run(&["work-pool", "deprovision", &b, "--yes"]).ok();
}
