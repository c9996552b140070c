//! ECS provisioning end to end, against moto's server and the real open-source Prefect
//! server (started by `scripts/test.sh`). Each test has its own moto account, so they run in
//! parallel; write calls are counted by the sandbox's proxy.

mod support;

use aws_sdk_ec2::types::Filter;
use reqwest::Method;
use serde_json::{Value, json};
use support::{World, docker_calls, tag_pairs};

const ROLE: &str = "PrefectEcsTaskExecutionRole";
const USER: &str = "prefect-ecs-user";

fn vpc_filter(id: &str) -> Filter {
    Filter::builder().name("vpc-id").values(id).build()
}

/// The job variable defaults of the pool, by name.
fn defaults(pool: &Value) -> Value {
    let properties = pool["base_job_template"]["variables"]["properties"].as_object().expect("the pool has a template");
    properties.iter().map(|(k, v)| (k.clone(), v.get("default").cloned().unwrap_or(Value::Null))).collect()
}

#[tokio::test]
async fn fresh_account_without_default_vpc_is_fully_provisioned_and_a_rerun_writes_nothing() {
    let world = World::new("fresh").await;
    let aws = world.clients().await;
    aws.delete_default_vpc().await;

    let run = world.create(&["--yes"]);
    run.ok();
    assert!(run.stdout.contains("Infrastructure successfully provisioned!"), "{}", run.stdout);
    let ours = tag_pairs([("managed-by", "pushpool"), ("prefect.work-pool", world.pool.as_str())]);

    // IAM: role with trust, managed policy and the log-group permission; user; policy attached.
    let role = aws.iam.get_role().role_name(ROLE).send().await.unwrap();
    let role = role.role().unwrap();
    assert!(role.assume_role_policy_document().unwrap().contains("ecs-tasks.amazonaws.com"));
    assert_eq!(tag_pairs(role.tags().iter().map(|t| (t.key(), t.value()))), ours);
    let attached = aws.iam.list_attached_role_policies().role_name(ROLE).send().await.unwrap();
    assert!(attached.attached_policies().iter().any(|p| p.policy_arn() == Some("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")));
    let inline = aws.iam.get_role_policy().role_name(ROLE).policy_name("prefect-create-log-groups").send().await.unwrap();
    assert!(inline.policy_document().contains("logs:CreateLogGroup") || inline.policy_document().contains("logs%3ACreateLogGroup"));
    let user = aws.iam.get_user().user_name(USER).send().await.unwrap();
    assert_eq!(tag_pairs(user.user().unwrap().tags().iter().map(|t| (t.key(), t.value()))), ours);
    let policy_arn = format!("arn:aws:iam::{}:policy/prefect-ecs-policy", world.account.id);
    let policies = aws.iam.list_attached_user_policies().user_name(USER).send().await.unwrap();
    assert!(policies.attached_policies().iter().any(|p| p.policy_arn() == Some(policy_arn.as_str())));
    let version = aws.iam.get_policy_version().policy_arn(&policy_arn).version_id("v1").send().await.unwrap();
    let document = version.policy_version().unwrap().document().unwrap().to_owned();
    let document = percent_encoding::percent_decode_str(&document).decode_utf8_lossy().into_owned();
    assert!(document.contains("logs:CreateLogGroup") && document.contains("iam:PassRole") && document.contains(role.arn()), "{document}");

    // Network: a private /16 with a gateway, three public subnets in three zones, a route
    // table sending 0.0.0.0/0 to the gateway, and a security group without inbound rules.
    let vpcs = aws.vpcs_named("prefect-ecs-vpc").await;
    assert_eq!(vpcs.len(), 1);
    let vpc = &vpcs[0];
    let vpc_id = vpc.vpc_id().unwrap();
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    assert!(tag_pairs(vpc.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap()))).contains(&"managed-by=pushpool".to_string()));
    let subnets = aws.ec2.describe_subnets().filters(vpc_filter(vpc_id)).send().await.unwrap();
    let mut zones: Vec<&str> = subnets.subnets().iter().map(|s| s.availability_zone().unwrap()).collect();
    zones.sort();
    assert_eq!(zones, ["us-east-1a", "us-east-1b", "us-east-1c"]);
    let gateways = aws.ec2.describe_internet_gateways().filters(Filter::builder().name("attachment.vpc-id").values(vpc_id).build()).send().await.unwrap();
    let gateway = gateways.internet_gateways()[0].internet_gateway_id().unwrap().to_owned();
    let tables = aws
        .ec2
        .describe_route_tables()
        .filters(vpc_filter(vpc_id))
        .filters(Filter::builder().name("tag:Name").values("prefect-ecs-route-table").build())
        .send()
        .await
        .unwrap();
    let table = &tables.route_tables()[0];
    assert!(table.routes().iter().any(|r| r.destination_cidr_block() == Some("0.0.0.0/0") && r.gateway_id() == Some(gateway.as_str())));
    let mut associated: Vec<&str> = table.associations().iter().filter_map(|a| a.subnet_id()).collect();
    associated.sort();
    let mut subnet_ids: Vec<&str> = subnets.subnets().iter().map(|s| s.subnet_id().unwrap()).collect();
    subnet_ids.sort();
    assert_eq!(associated, subnet_ids);
    let groups = aws
        .ec2
        .describe_security_groups()
        .filters(vpc_filter(vpc_id))
        .filters(Filter::builder().name("group-name").values("prefect-ecs-security-group").build())
        .send()
        .await
        .unwrap();
    let group = &groups.security_groups()[0];
    assert!(group.ip_permissions().is_empty(), "no inbound rules");

    // ECS cluster and ECR repository, tagged.
    let clusters = aws.ecs.describe_clusters().clusters("prefect-ecs-cluster").include(aws_sdk_ecs::types::ClusterField::Tags).send().await.unwrap();
    let cluster = &clusters.clusters()[0];
    assert_eq!(cluster.status(), Some("ACTIVE"));
    assert_eq!(tag_pairs(cluster.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap()))), ours);
    let repositories = aws.ecr.describe_repositories().repository_names("prefect-flows").send().await.unwrap();
    let repository_arn = repositories.repositories()[0].repository_arn().unwrap().to_owned();
    let repository_tags = aws.ecr.list_tags_for_resource().resource_arn(repository_arn).send().await.unwrap();
    assert_eq!(tag_pairs(repository_tags.tags().iter().map(|t| (t.key(), t.value()))), ours);

    // The pool's job variables use every resource; the block holds a key that exists.
    let pool = world.work_pool().await.expect("pool exists");
    assert_eq!(pool["type"], "ecs:push");
    let defaults = defaults(&pool);
    let block = world.block().await.expect("block exists");
    assert_eq!(defaults["aws_credentials"], json!({"$ref": {"block_document_id": block["id"]}}));
    assert_eq!(defaults["cluster"], "prefect-ecs-cluster");
    assert_eq!(defaults["vpc_id"], vpc_id);
    assert_eq!(defaults["execution_role_arn"], role.arn());
    let network = &defaults["network_configuration"]["awsvpcConfiguration"];
    let mut pool_subnets: Vec<&str> = network["subnets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    pool_subnets.sort();
    assert_eq!(pool_subnets, subnet_ids);
    assert_eq!(network["securityGroups"], json!([group.group_id().unwrap()]));
    assert_eq!(network["assignPublicIp"], "ENABLED");
    let key_id = block["data"]["aws_access_key_id"].as_str().unwrap();
    assert_eq!(aws.access_keys(USER).await, [key_id]);
    assert_eq!(block["data"]["region_name"], "us-east-1");

    // Profile: namespace set, every other line kept.
    let profiles = std::fs::read_to_string(world.profiles_path()).unwrap();
    assert!(profiles.starts_with("# a comment that must survive\n"), "{profiles}");
    assert!(profiles.contains("PREFECT_LOGGING_LEVEL = \"INFO\"") && profiles.contains("[profiles.other]"));
    let namespace = format!("PREFECT_DEPLOYMENTS_DEFAULT_DOCKER_BUILD_NAMESPACE = \"{}.dkr.ecr.us-east-1.amazonaws.com\"", world.account.id);
    assert!(profiles.contains(&namespace), "{profiles}");

    // Docker logged in with the ECR password on stdin, never on argv.
    let ecr_password = format!("{}-auth-token", world.account.id);
    let logins: Vec<Value> = docker_calls(&world.docker_log()).into_iter().filter(|c| c["argv"][0] == "login").collect();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["stdin"], ecr_password.as_str());
    assert!(logins[0]["argv"].as_array().unwrap().iter().any(|a| a == "--password-stdin"));
    assert!(!logins[0]["argv"].to_string().contains(&ecr_password));

    // No secret in anything pushpool printed.
    let secret = world.block_secret().await;
    run.assert_no_secret(&[&secret, &ecr_password, &world.account.secret_key]);
    let checked = world.secrets();
    assert!(checked.contains(&secret) && checked.contains(&ecr_password), "the suite-wide check knows this run's secrets");

    // Prefect's own client reads the block and the pool we wrote.
    let script = r#"
import asyncio, json, sys
from prefect_aws import AwsCredentials
from prefect.client.orchestration import get_client
block, pool = sys.argv[1], sys.argv[2]
creds = AwsCredentials.load(block)
async def read():
    async with get_client() as client:
        return await client.read_work_pool(pool)
work_pool = asyncio.run(read())
props = work_pool.base_job_template["variables"]["properties"]
print(json.dumps({"key": creds.aws_access_key_id, "secret": creds.aws_secret_access_key.get_secret_value(),
    "region": creds.region_name, "type": work_pool.type,
    "cluster": props["cluster"]["default"], "vpc_id": props["vpc_id"]["default"]}))
"#;
    let block_name = format!("{}-aws-credentials", world.pool);
    let output = world.python(script, &[&block_name, &world.pool]);
    assert!(output.status.success(), "Prefect's client failed: {}", String::from_utf8_lossy(&output.stderr));
    let read: Value = serde_json::from_slice(output.stdout.rsplit(|b| *b == b'\n').find(|l| !l.is_empty()).unwrap()).unwrap();
    assert_eq!(read["key"], key_id);
    assert_eq!(read["secret"], secret.as_str());
    assert_eq!(read["region"], "us-east-1");
    assert_eq!(read["type"], "ecs:push");
    assert_eq!(read["cluster"], "prefect-ecs-cluster");
    assert_eq!(read["vpc_id"], vpc_id);

    // A second run finds everything in place and writes nothing, anywhere.
    let marks = world.marks().await;
    let again = world.create(&["--yes"]);
    again.ok();
    assert!(again.stdout.contains("Nothing to change"), "{}", again.stdout);
    world.assert_no_writes_since(marks).await;
    // And reads only what it needs to know that: each resource once, no zone list, no
    // default-VPC reads, one read of the apply markers.
    let reads = |calls: Vec<support::Call>, mark: usize| {
        let mut reads: Vec<String> = calls.into_iter().skip(mark).map(|c| format!("{} {}", c.service, c.action)).collect();
        reads.sort();
        reads
    };
    let mut aws_reads = reads(world.aws.calls().await, marks.0);
    // The channel pages by two: a list of more (the subnets) takes more than one read.
    aws_reads.dedup();
    assert_eq!(
        aws_reads,
        [
            "ec2 DescribeInternetGateways",
            "ec2 DescribeRouteTables",
            "ec2 DescribeSecurityGroups",
            "ec2 DescribeSubnets",
            "ec2 DescribeVpcs",
            "ecr DescribeRepositories",
            "ecs DescribeClusters",
            "iam GetPolicy",
            "iam GetPolicyVersion",
            "iam GetRole",
            "iam GetRolePolicy",
            "iam GetUser",
            "iam ListAccessKeys",
            "iam ListAttachedRolePolicies",
            "iam ListAttachedUserPolicies",
            "sts GetCallerIdentity",
        ]
    );
    let mut prefect_reads = reads(world.prefect.calls().await, marks.1);
    // The markers of every test's applies share the sandbox's server: their list may take pages.
    prefect_reads.dedup();
    // The pool's record (where it lives) is read beside the pool, while AWS is connected.
    assert_eq!(prefect_reads.len(), 4, "the pool, its record, the block and the apply markers: {prefect_reads:?}");
    assert_eq!(docker_calls(&world.docker_log()).iter().filter(|c| c["argv"][0] == "login").count(), 1);
    assert_eq!(aws.vpcs_named("prefect-ecs-vpc").await.len(), 1, "no second VPC");
    assert_eq!(aws.access_keys(USER).await, [key_id], "no extra key");
}

#[tokio::test]
async fn default_vpc_without_internet_gateway_gets_a_private_vpc_beside_it() {
    let world = World::new("nogw").await;
    let aws = world.clients().await;
    world.create(&["--yes"]).ok();
    let vpcs = aws.vpcs_named("prefect-ecs-vpc").await;
    assert_eq!(vpcs.len(), 1);
    assert_eq!(vpcs[0].cidr_block(), Some("10.0.0.0/16"), "not 172.31/16 (taken) and never public space");
    let all = aws.ec2.describe_vpcs().send().await.unwrap();
    assert_eq!(all.vpcs().len(), 2, "the default VPC is left as it was");
    let defaults = defaults(&world.work_pool().await.unwrap());
    assert_eq!(defaults["vpc_id"], vpcs[0].vpc_id().unwrap());
}

#[tokio::test]
async fn default_vpc_with_internet_route_is_used_and_only_a_security_group_is_added() {
    let world = World::new("defvpc").await;
    let aws = world.clients().await;
    let (default_vpc, _) = aws.connect_default_vpc().await;
    let marks = world.marks().await;
    let run = world.create(&["--yes"]);
    run.ok();
    assert!(run.stdout.contains(&format!("default VPC {default_vpc} routes 0.0.0.0/0")), "{}", run.stdout);
    let writes = world.aws.writes_since(marks.0).await;
    for network_write in ["CreateVpc", "CreateSubnet", "CreateInternetGateway", "CreateRouteTable", "CreateRoute", "AssociateRouteTable"] {
        assert!(!writes.iter().any(|w| w.ends_with(&format!(" {network_write}"))), "{network_write} in {writes:?}");
    }
    assert!(writes.contains(&"ec2 CreateSecurityGroup".to_string()));
    assert!(aws.vpcs_named("prefect-ecs-vpc").await.is_empty());
    let defaults = defaults(&world.work_pool().await.unwrap());
    assert_eq!(defaults["vpc_id"], default_vpc.as_str());
    let subnets = defaults["network_configuration"]["awsvpcConfiguration"]["subnets"].as_array().unwrap().clone();
    assert_eq!(subnets.len(), 3);
    let described = aws.ec2.describe_subnets().filters(vpc_filter(&default_vpc)).send().await.unwrap();
    for subnet in &subnets {
        let found = described.subnets().iter().find(|s| s.subnet_id() == subnet.as_str()).expect("a default subnet");
        assert_eq!(found.default_for_az(), Some(true));
    }
}

#[tokio::test]
async fn dry_run_on_a_fresh_account_plans_everything_and_writes_nothing() {
    let world = World::new("dry").await;
    let profiles_before = std::fs::read(world.profiles_path()).unwrap();
    let marks = world.marks().await;
    let run = world.create(&["--dry-run"]);
    run.ok();
    assert!(run.stdout.contains("Plan: 13 to create, 1 to update, 0 to reuse."), "{}", run.stdout);
    assert!(run.stdout.contains("Dry run: nothing was changed."));
    assert!(run.stdout.contains("vpc_id = (known after apply)"));
    world.assert_no_writes_since(marks).await;
    assert_eq!(std::fs::read(world.profiles_path()).unwrap(), profiles_before, "profile untouched");
    assert!(docker_calls(&world.docker_log()).is_empty(), "docker not called");
    assert!(world.work_pool().await.is_none());
}

#[tokio::test]
async fn block_whose_key_was_deleted_gets_a_new_key_and_is_updated_in_place() {
    let world = World::new("rotate").await;
    let aws = world.clients().await;
    world.create(&["--yes"]).ok();
    let block = world.block().await.unwrap();
    let old_key = block["data"]["aws_access_key_id"].as_str().unwrap().to_owned();
    aws.iam.delete_access_key().user_name(USER).access_key_id(&old_key).send().await.unwrap();
    // The first apply left the account's first apply marker, done. Made to look two days
    // old, it goes with the next apply, which leaves the second.
    let markers = world.apply_markers().await;
    let [(name, value)] = &markers[..] else { panic!("one marker: {markers:?}") };
    assert!(name.ends_with("_0000000001") && value["done"] == json!(true), "{name}: {value}");
    let mut aged = value.clone();
    aged["since"] = json!(value["since"].as_i64().unwrap() - 2 * 86_400);
    assert_eq!(world.prefect_send(Method::PATCH, &format!("/variables/name/{name}"), json!({"value": aged})).await, 204);

    let marks = world.marks().await;
    let run = world.create(&["--yes"]);
    run.ok();
    assert!(run.stdout.contains(&format!("holds key {old_key}, which no longer exists on IAM user {USER}")), "{}", run.stdout);
    let writes = world.aws.writes_since(marks.0).await;
    // The user is marked while the new key is minted and unmarked once it is stored.
    assert_eq!(writes, ["iam TagUser", "iam CreateAccessKey", "iam UntagUser"]);
    let updated = world.block().await.unwrap();
    assert_eq!(updated["id"], block["id"], "the same block, updated in place");
    let new_key = updated["data"]["aws_access_key_id"].as_str().unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(aws.access_keys(USER).await, [new_key]);
    run.assert_no_secret(&[&world.block_secret().await]);
    // The pool still references the same block, so it was not rewritten.
    assert!(!world.prefect.writes_since(marks.1).await.iter().any(|w| w.contains("work_pools")));
    let markers = world.apply_markers().await;
    let [(name, value)] = &markers[..] else { panic!("the old marker went, the new one stays: {markers:?}") };
    assert!(name.ends_with("_0000000002") && value["done"] == json!(true), "{name}: {value}");
}

/// Deactivates access key `id` of the pool's user, as `aws iam update-access-key --status Inactive` does.
async fn deactivate(aws: &support::Clients, id: &str) {
    aws.iam.update_access_key().user_name(USER).access_key_id(id).status(aws_sdk_iam::types::StatusType::Inactive).send().await.unwrap();
}

#[tokio::test]
async fn block_whose_key_was_deactivated_gets_a_new_key_and_the_dead_one_is_deleted_after_the_block_write() {
    let world = World::new("dead").await;
    let aws = world.clients().await;
    world.create(&["--yes"]).ok();
    let old_key = world.block().await.unwrap()["data"]["aws_access_key_id"].as_str().unwrap().to_owned();
    deactivate(&aws, &old_key).await;

    let plan = world.run(&["plan", "--type", "ecs:push", &world.pool]);
    assert!(plan.all().contains(&format!("holds key {old_key}, which is inactive; the dead key is deleted once the block holds the new one")), "{}", plan.all());
    let marks = world.marks().await;
    let run = world.create(&["--yes"]);
    run.ok();
    // Marked (with the dead key's id), minted, stored in the block, then the dead key and the mark go.
    assert_eq!(world.aws.writes_since(marks.0).await, ["iam TagUser", "iam CreateAccessKey", "iam DeleteAccessKey", "iam UntagUser"]);
    let new_key = world.block().await.unwrap()["data"]["aws_access_key_id"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    assert_eq!(aws.access_keys(USER).await, [new_key.as_str()], "exactly one key: the block's");
    run.assert_no_secret(&[&world.block_secret().await]);
    let marks = world.marks().await;
    assert!(world.create(&["--yes"]).ok().stdout.contains("Nothing to change"));
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn a_users_own_inactive_key_is_kept_and_a_full_user_deletes_the_blocks_dead_key_before_minting() {
    let world = World::new("full").await;
    let aws = world.clients().await;
    world.create(&["--yes"]).ok();
    let block_key = world.block().await.unwrap()["data"]["aws_access_key_id"].as_str().unwrap().to_owned();
    let own = aws.iam.create_access_key().user_name(USER).send().await.unwrap().access_key().unwrap().access_key_id().to_owned();
    deactivate(&aws, &own).await;
    // A dead key the block never held is not pushpool's: the run changes nothing.
    let marks = world.marks().await;
    assert!(world.create(&["--yes"]).ok().stdout.contains("Nothing to change"));
    world.assert_no_writes_since(marks).await;

    // Now the block's key is dead too, and IAM's two keys leave no room for a third.
    deactivate(&aws, &block_key).await;
    let marks = world.marks().await;
    let run = world.create(&["--yes"]);
    run.ok();
    assert!(run.stdout.contains("the dead key is deleted before the new one is minted, as IAM's limit leaves no room beside it"), "{}", run.stdout);
    assert_eq!(world.aws.writes_since(marks.0).await, ["iam TagUser", "iam DeleteAccessKey", "iam CreateAccessKey", "iam UntagUser"]);
    let new_key = world.block().await.unwrap()["data"]["aws_access_key_id"].as_str().unwrap().to_owned();
    let mut keys = aws.access_keys(USER).await;
    keys.sort();
    let mut expected = vec![own.clone(), new_key];
    expected.sort();
    assert_eq!(keys, expected, "the user's own inactive key stays, the block's dead one went");

    // Both of the user's keys dead and neither the block's: the plan stops, deleting nothing.
    let world = World::new("full").await;
    world.create(&["--yes"]).ok();
    let aws = world.clients().await;
    let block_key = world.block().await.unwrap()["data"]["aws_access_key_id"].as_str().unwrap().to_owned();
    aws.iam.delete_access_key().user_name(USER).access_key_id(&block_key).send().await.unwrap();
    for _ in 0..2 {
        let own = aws.iam.create_access_key().user_name(USER).send().await.unwrap().access_key().unwrap().access_key_id().to_owned();
        deactivate(&aws, &own).await;
    }
    let marks = world.marks().await;
    let run = world.create(&["--yes"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("already has 2 keys, IAM's limit"), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;
    assert_eq!(aws.access_keys(USER).await.len(), 2, "no key deleted");
}

#[tokio::test]
async fn a_new_user_iam_does_not_know_yet_gets_its_key_after_the_named_wait() {
    let world = World::new("iamlag").await;
    let aws = world.clients().await;
    // What IAM answers, for some seconds, to a key for a user created moments ago.
    let unknown = format!("The user with name {USER} cannot be found.");
    world.aws.set_faults(json!({"CreateAccessKey": {"kind": "error", "status": 404, "code": "NoSuchEntity", "message": unknown, "times": 2}})).await;
    let run = world.create(&["--yes"]);
    run.ok();
    assert!(run.stderr.contains(&format!("waiting for IAM to make user {USER} usable")), "{}", run.stderr);
    let statuses: Vec<u16> = world.aws.calls().await.iter().filter(|c| c.action == "CreateAccessKey").map(|c| c.status).collect();
    assert_eq!(statuses, [404, 404, 200]);
    let key = world.block().await.unwrap()["data"]["aws_access_key_id"].as_str().unwrap().to_owned();
    assert_eq!(aws.access_keys(USER).await, [key], "one key, the block's");
}

#[tokio::test]
async fn user_with_two_keys_and_no_block_stops_before_any_write() {
    let world = World::new("quota").await;
    let aws = world.clients().await;
    aws.iam.create_user().user_name(USER).send().await.unwrap();
    let mut keys = Vec::new();
    for _ in 0..2 {
        let key = aws.iam.create_access_key().user_name(USER).send().await.unwrap();
        keys.push(key.access_key().unwrap().access_key_id().to_owned());
    }
    let marks = world.marks().await;
    let run = world.create(&["--yes"]);
    assert_eq!(run.code, 1, "{}", run.all());
    for key in &keys {
        assert!(run.stderr.contains(key.as_str()), "lists key {key}: {}", run.stderr);
    }
    assert!(run.stderr.contains("IAM's limit") && run.stderr.contains("days old"), "{}", run.stderr);
    assert!(run.stderr.contains("aws iam delete-access-key --user-name prefect-ecs-user"), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;
    assert_eq!(aws.access_keys(USER).await.len(), 2, "no key deleted");
}

#[tokio::test]
async fn drifted_policy_gets_a_new_default_version_within_the_five_version_limit() {
    let world = World::new("drift").await;
    let aws = world.clients().await;
    world.create(&["--yes"]).ok();
    let arn = format!("arn:aws:iam::{}:policy/prefect-ecs-policy", world.account.id);
    let drifted = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["ecs:RunTask", "s3:GetObject"], "Resource": "*"}]});
    for default in [false, false, false, true] {
        aws.iam.create_policy_version().policy_arn(&arn).policy_document(drifted.to_string()).set_as_default(default).send().await.unwrap();
    }
    let marks = world.marks().await;
    let run = world.create(&["--yes"]);
    run.ok();
    assert!(run.stdout.contains("document drifted: lacks"), "{}", run.stdout);
    assert!(run.stdout.contains("also grants s3:GetObject"), "{}", run.stdout);
    let writes = world.aws.writes_since(marks.0).await;
    assert_eq!(writes, ["iam DeletePolicyVersion", "iam CreatePolicyVersion"]);
    let versions = aws.iam.list_policy_versions().policy_arn(&arn).send().await.unwrap();
    assert_eq!(versions.versions().len(), 5);
    assert!(!versions.versions().iter().any(|v| v.version_id() == Some("v1")), "the oldest non-default version went");
    let default = versions.versions().iter().find(|v| v.is_default_version()).unwrap().version_id().unwrap().to_owned();
    let document = aws.iam.get_policy_version().policy_arn(&arn).version_id(default).send().await.unwrap();
    let document = document.policy_version().unwrap().document().unwrap().to_owned();
    let document = percent_encoding::percent_decode_str(&document).decode_utf8_lossy().into_owned();
    assert!(document.contains("logs:CreateLogGroup") && !document.contains("s3:GetObject"), "{document}");
    world.create(&["--dry-run"]).ok().stdout.contains("Nothing to change").then_some(()).expect("converged");
}

#[tokio::test]
async fn existing_pool_that_would_change_needs_overwrite() {
    let world = World::new("exists").await;
    let status = world.prefect_send(Method::POST, "/work_pools/", json!({"name": world.pool, "type": "ecs:push"})).await;
    assert_eq!(status, 201);
    let marks = world.marks().await;
    let run = world.create(&["--yes"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("already exists and would change") && run.stderr.contains("--overwrite"), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;

    world.create(&["--yes", "--overwrite"]).ok();
    assert_eq!(defaults(&world.work_pool().await.unwrap())["cluster"], "prefect-ecs-cluster");
}

#[tokio::test]
async fn provision_infra_needs_an_existing_pool_of_a_provisionable_type_and_keeps_its_template() {
    let world = World::new("infra").await;
    let marks = world.marks().await;
    let missing = world.run(&["work-pool", "provision-infra", &world.pool, "--yes"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("does not exist") && missing.stderr.contains("pushpool work-pool create"), "{}", missing.stderr);

    let process = format!("{}-process", world.pool);
    world.prefect_send(Method::POST, "/work_pools/", json!({"name": process, "type": "process"})).await;
    let run = world.run(&["work-pool", "provision-infra", &process, "--yes"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("work pool type 'process'") && run.stderr.contains("ecs:push"), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;

    // An ecs:push pool made over REST with the ecs template and a customised default.
    let metadata = world.prefect_get("/collections/views/aggregate-worker-metadata").await.unwrap();
    let mut template = metadata["prefect-aws"]["ecs"]["default_base_job_configuration"].clone();
    template["variables"]["properties"]["launch_type"]["default"] = json!("EC2");
    world.prefect_send(Method::POST, "/work_pools/", json!({"name": world.pool, "type": "ecs:push", "base_job_template": template})).await;
    world.run(&["work-pool", "provision-infra", &world.pool, "--yes"]).ok();
    let defaults = defaults(&world.work_pool().await.unwrap());
    assert_eq!(defaults["launch_type"], "EC2", "the pool's own template is kept");
    assert_eq!(defaults["cluster"], "prefect-ecs-cluster");
}

#[tokio::test]
async fn create_takes_prefects_flags_a_base_template_paused_and_set_as_default() {
    let world = World::new("flags").await;
    let metadata = world.prefect_get("/collections/views/aggregate-worker-metadata").await.unwrap();
    let mut template = metadata["prefect-aws"]["ecs"]["default_base_job_configuration"].clone();
    template["variables"]["properties"]["team"] = json!({"type": "string", "default": "data-platform"});
    let file = world.home.path().join("tpl.json");
    std::fs::write(&file, template.to_string()).unwrap();
    let plan = world.create(&["--dry-run", "--base-job-template", file.to_str().unwrap(), "--paused", "--set-as-default"]);
    plan.ok();
    assert!(plan.stdout.contains("set PREFECT_DEFAULT_WORK_POOL_NAME to"), "the default pool is part of the plan: {}", plan.stdout);
    assert!(!std::fs::read_to_string(world.profiles_path()).unwrap().contains("PREFECT_DEFAULT_WORK_POOL_NAME"), "a dry run writes no profile");

    world.create(&["--yes", "--base-job-template", file.to_str().unwrap(), "--paused", "--set-as-default"]).ok();
    let pool = world.work_pool().await.unwrap();
    assert_eq!(pool["is_paused"], true);
    let defaults = defaults(&pool);
    assert_eq!(defaults["team"], "data-platform", "the pool starts from the given template");
    assert_eq!(defaults["cluster"], "prefect-ecs-cluster", "and gets the provisioned defaults");
    let profiles = std::fs::read_to_string(world.profiles_path()).unwrap();
    assert!(profiles.contains(&format!("PREFECT_DEFAULT_WORK_POOL_NAME = \"{}\"", world.pool)), "{profiles}");
    assert!(profiles.starts_with("# a comment that must survive\n"), "every other line is kept: {profiles}");

    let marks = world.marks().await;
    let again = world.create(&["--yes", "--base-job-template", file.to_str().unwrap(), "--paused", "--set-as-default"]);
    assert!(again.ok().stdout.contains("Nothing to change"), "{}", again.stdout);
    world.assert_no_writes_since(marks).await;

    let bad = world.home.path().join("bad.json");
    std::fs::write(&bad, "{\"variables\": {}}").unwrap();
    let refused = world.create(&["--yes", "--base-job-template", bad.to_str().unwrap()]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("bad.json") && refused.stderr.contains("get-default-base-job-template"), "{}", refused.stderr);
}

#[tokio::test]
async fn non_interactive_run_without_yes_shows_the_plan_and_changes_nothing() {
    let world = World::new("noyes").await;
    let marks = world.marks().await;
    let run = world.create(&[]);
    assert_eq!(run.code, 3, "{}", run.all());
    assert!(run.stdout.contains("Plan: 13 to create"), "{}", run.stdout);
    assert!(run.stderr.contains("add --yes"), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn declined_confirmation_creates_nothing() {
    let world = World::new("decline").await;
    let marks = world.marks().await;
    // A real terminal for pushpool (util-linux `script`), answering "n" at the prompt.
    let command = format!("{} work-pool create {} --type ecs:push --provision-infra", env!("CARGO_BIN_EXE_pushpool"), world.pool);
    let script = world.command(&[]);
    let envs: Vec<(std::ffi::OsString, std::ffi::OsString)> = script.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))).collect();
    let mut terminal = std::process::Command::new("script");
    terminal
        .args(["-qec", &command, "/dev/null"])
        .env_clear()
        .envs(envs)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = terminal.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    use std::io::Write;
    child.stdin.as_mut().unwrap().write_all(b"n").unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("Proceed with infrastructure provisioning? [y/n]"), "{text}");
    assert!(text.contains("declined; nothing was changed"), "{text}");
    assert_eq!(output.status.code(), Some(3), "{text}");
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn prefect_server_down_fails_before_any_aws_write() {
    let world = World::new("down").await;
    let marks = world.marks().await;
    let run = world.run_command(
        world.command(&["work-pool", "create", &world.pool, "--type", "ecs:push", "--provision-infra", "--yes"]).env("PREFECT_API_URL", "http://127.0.0.1:9/api"),
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("Prefect API at http://127.0.0.1:9/api") && run.stderr.contains("unreachable"), "{}", run.stderr);
    assert!(run.stderr.contains("fix:"), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn region_with_two_zones_gets_two_subnets() {
    let mut world = World::new("twozones").await;
    world.region = "us-west-1".into();
    world.create(&["--yes"]).ok();
    let defaults = defaults(&world.work_pool().await.unwrap());
    assert_eq!(defaults["network_configuration"]["awsvpcConfiguration"]["subnets"].as_array().unwrap().len(), 2);
    let block = world.block().await.unwrap();
    assert_eq!(block["data"]["region_name"], "us-west-1");
}

#[tokio::test]
async fn missing_docker_is_reported_and_the_rest_stands() {
    let world = World::new("nodocker").await;
    let run = world.run_command(world.command(&["work-pool", "create", &world.pool, "--type", "ecs:push", "--provision-infra", "--yes"]).env("PATH", "/nonexistent"));
    run.ok();
    assert!(run.stderr.contains("Docker is not installed"), "{}", run.stderr);
    assert!(run.stderr.contains("--password-stdin"), "the note says how to log in later: {}", run.stderr);
    assert!(std::fs::read_to_string(world.profiles_path()).unwrap().contains("PREFECT_DEPLOYMENTS_DEFAULT_DOCKER_BUILD_NAMESPACE"));
    assert!(world.work_pool().await.is_some());
}

#[tokio::test]
async fn failed_docker_login_never_shows_the_registry_password() {
    let world = World::new("dockerfail").await;
    let run = world.run_command(world.command(&["work-pool", "create", &world.pool, "--type", "ecs:push", "--provision-infra", "--yes"]).env("FAKE_DOCKER_FAIL", "1"));
    run.ok();
    assert!(run.stderr.contains("docker login to") && run.stderr.contains("fake failure"), "{}", run.stderr);
    run.assert_no_secret(&[&format!("{}-auth-token", world.account.id), &world.block_secret().await]);
}

// Multi-threaded: the stand-in server must answer while the test blocks on the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_api_key_is_named_with_the_fix() {
    let world = World::new("apikey").await;
    // A Prefect API stand-in that refuses every key, as Prefect Cloud does for a bad one.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = socket.read(&mut buffer).await;
            let body = r#"{"detail":"Invalid authentication credentials"}"#;
            let reply = format!("HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    let marks = world.marks().await;
    let key = "pnu_not_a_real_key_0123456789";
    let run = world.run_command(
        world
            .command(&["work-pool", "create", &world.pool, "--type", "ecs:push", "--provision-infra", "--yes"])
            .env("PREFECT_API_URL", format!("http://127.0.0.1:{port}/api"))
            .env("PREFECT_API_KEY", key),
    );
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("401") && run.stderr.contains("Invalid authentication credentials"), "{}", run.stderr);
    assert!(run.stderr.contains("check PREFECT_API_KEY"), "{}", run.stderr);
    run.assert_no_secret(&[key]);
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn access_denied_mid_apply_names_the_action_and_a_rerun_converges() {
    let world = World::new("denied").await;
    let aws = world.clients().await;
    aws.delete_default_vpc().await;
    world
        .aws
        .set_faults(json!({"CreateCluster": {"status": 400, "code": "AccessDeniedException", "message": "User is not authorized to perform: ecs:CreateCluster"}}))
        .await;
    let run = world.create(&["--yes"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("error: ECS cluster prefect-ecs-cluster: ecs:CreateCluster failed: User is not authorized"), "{}", run.stderr);
    assert!(run.stderr.contains("grant ecs:CreateCluster"), "{}", run.stderr);
    assert!(run.stderr.contains("written before the failure:") && run.stderr.contains("not started: "), "{}", run.stderr);
    assert!(run.stderr.contains("run the same command again"), "{}", run.stderr);
    assert!(world.work_pool().await.is_none(), "the pool waits for the cluster");

    world.aws.set_faults(json!({})).await;
    world.create(&["--yes"]).ok();
    assert_eq!(aws.vpcs_named("prefect-ecs-vpc").await.len(), 1, "one VPC after the resumed run");
    assert_eq!(aws.access_keys(USER).await.len(), 1, "one key after the resumed run");
    let marks = world.marks().await;
    assert!(world.create(&["--yes"]).ok().stdout.contains("Nothing to change"));
    world.assert_no_writes_since(marks).await;
}
