//! Every list pushpool makes reads all its pages, against moto and the real Prefect server
//! behind proxy channels that page small, as every channel does (tests/sandbox/proxy.py): two
//! items a page for the AWS list and describe calls (moto itself pages almost none of them),
//! and a `limit` of two on every Prefect filter request. What pushpool needs is put past the first page each time,
//! so a client that read only the first page would plan a second VPC, attach a policy again,
//! or delete what another pool uses.

mod support;

use serde_json::json;
use support::{Channel, World};

const MANAGED: &str = "arn:aws:iam::aws:policy/";

fn create(world: &World, pool: &str) {
    world.run(&["work-pool", "create", pool, "--type", "ecs:push", "--provision-infra", "--yes"]).ok();
}

#[tokio::test]
async fn with_two_item_pages_a_rerun_writes_nothing_and_a_teardown_keeps_what_a_pool_on_a_later_page_uses() {
    let world = World::new("paging").await;
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

/// The proxy's model of each protocol's paging, read by the SDK's own parsers: one page of one
/// item and a continuation token, and the paginator reaching every item. A proxy that answered
/// whole would let a client that reads one page pass the test above.
#[tokio::test]
async fn the_proxy_pages_query_xml_and_json_answers_and_prefect_filters_as_their_clients_read_them() {
    let world = World::new("proxy-paging").await;
    let channel = Channel::open(&world.sandbox, &world.moto).await;
    channel.page(1).await;
    let (direct, paged) = (world.clients().await, support::clients(&channel.url(), &world.account).await);

    // IAM (query protocol, Marker and IsTruncated): three attached policies; a policy on a user
    // and a role, listed in one call's two lists.
    direct.iam.create_user().user_name("paged").send().await.unwrap();
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    direct.iam.create_role().role_name("paged").assume_role_policy_document(trust.to_string()).send().await.unwrap();
    for policy in ["AmazonDynamoDBReadOnlyAccess", "AmazonEC2ReadOnlyAccess", "AmazonS3ReadOnlyAccess"] {
        direct.iam.attach_user_policy().user_name("paged").policy_arn(format!("{MANAGED}{policy}")).send().await.unwrap();
    }
    direct.iam.attach_role_policy().role_name("paged").policy_arn(format!("{MANAGED}AmazonS3ReadOnlyAccess")).send().await.unwrap();
    let first = paged.iam.list_attached_user_policies().user_name("paged").send().await.unwrap();
    assert_eq!((first.attached_policies().len(), first.is_truncated()), (1, true));
    let all = paged.iam.list_attached_user_policies().user_name("paged").into_paginator().items().send().try_collect().await.unwrap();
    let names: Vec<&str> = all.iter().filter_map(|p| p.policy_name()).collect();
    assert_eq!(names, ["AmazonDynamoDBReadOnlyAccess", "AmazonEC2ReadOnlyAccess", "AmazonS3ReadOnlyAccess"]);
    let pages = paged.iam.list_entities_for_policy().policy_arn(format!("{MANAGED}AmazonS3ReadOnlyAccess")).into_paginator().send().try_collect().await.unwrap();
    let entities: Vec<usize> = pages.iter().map(|p| p.policy_users().len() + p.policy_roles().len()).collect();
    assert_eq!(entities, [1, 1], "the user, then the role");

    // EC2 (query protocol, NextToken/nextToken): the default VPC and two more.
    for cidr in ["10.0.0.0/16", "10.1.0.0/16"] {
        direct.ec2.create_vpc().cidr_block(cidr).send().await.unwrap();
    }
    let first = paged.ec2.describe_vpcs().send().await.unwrap();
    assert_eq!(first.vpcs().len(), 1);
    assert!(first.next_token().is_some());
    let all = paged.ec2.describe_vpcs().into_paginator().items().send().try_collect().await.unwrap();
    assert_eq!(all.len(), 3);

    // ECS and CloudWatch Logs (JSON protocol, nextToken).
    for _revision in 0..2 {
        let container = aws_sdk_ecs::types::ContainerDefinition::builder().name("c").image("busybox").memory(128).build();
        direct.ecs.register_task_definition().family("paged").container_definitions(container).send().await.unwrap();
    }
    let first = paged.ecs.list_task_definitions().family_prefix("paged").send().await.unwrap();
    assert_eq!((first.task_definition_arns().len(), first.next_token().is_some()), (1, true));
    let all = paged.ecs.list_task_definitions().family_prefix("paged").into_paginator().items().send().try_collect().await.unwrap();
    assert_eq!(all.len(), 2);
    for group in ["paged-a", "paged-b", "paged-c"] {
        direct.logs.create_log_group().log_group_name(group).send().await.unwrap();
    }
    let all = paged.logs.describe_log_groups().log_group_name_prefix("paged").into_paginator().send().try_collect().await.unwrap();
    assert_eq!(all.iter().map(|p| p.log_groups().len()).collect::<Vec<_>>(), [1, 1, 1]);

    // Prefect: a filter request gets at most the page size, and the offset walks on.
    let prefect = Channel::open(&world.sandbox, &world.sandbox.prefect).await;
    prefect.page(1).await;
    let names = [format!("{}-1", world.pool), format!("{}-2", world.pool)];
    for name in &names {
        assert_eq!(world.prefect_send(reqwest::Method::POST, "/work_pools/", json!({"name": name, "type": "process"})).await, 201);
    }
    let filter = |offset: usize| {
        let body = json!({"work_pools": {"name": {"any_": names}}, "offset": offset, "limit": 50});
        support::http().post(format!("{}/api/work_pools/filter", prefect.url())).json(&body).send()
    };
    let mut seen = Vec::new();
    for offset in 0..3 {
        let page: Vec<serde_json::Value> = filter(offset).await.unwrap().json().await.unwrap();
        assert!(page.len() <= 1, "{page:?}");
        seen.extend(page.iter().filter_map(|p| p["name"].as_str().map(str::to_owned)));
    }
    for name in &names {
        world.prefect_send(reqwest::Method::DELETE, &format!("/work_pools/{name}"), json!({})).await;
    }
    assert_eq!(seen, names);
}
