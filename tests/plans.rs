//! Plans reviewed in pull requests: `pushpool plan` (text, JSON, Markdown), saved plans
//! applied exactly or refused when stale, pools files, and least-privilege policies proved
//! on moto with IAM enforcement on.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::{Account, PrivateMoto, World, docker_calls};

fn plan_args<'a>(world: &'a World, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["plan", "--type", "ecs:push", world.pool.as_str()];
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn plan_prints_json_matching_its_schema_and_markdown_and_writes_nothing() {
    let world = World::new("planjson").await;
    let out = world.home.path().join("plan.json");
    let marks = world.marks().await;
    let run = world.run(&plan_args(&world, &["--output", "json", "--out", out.to_str().unwrap(), "--detailed-exitcode"]));
    assert_eq!(run.code, 2, "changes pending: {}", run.all());
    let printed: Value = serde_json::from_str(&run.stdout).expect("stdout is the JSON document alone");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(printed, saved);
    world.assert_matches_schema(&run.stdout);
    assert_eq!(printed["summary"], json!({"create": 13, "update": 1, "reuse": 0}));
    assert_eq!(printed["targets"], json!([{"cloud": "aws", "account": world.account.id, "region": "us-east-1"}]));
    assert_eq!(printed["pools"][0]["mode"], "ensure");
    run.assert_no_secret(&[&world.account.secret_key]);
    assert!(!saved.to_string().contains(&world.account.secret_key));

    let markdown = world.run(&plan_args(&world, &["--output", "markdown"]));
    markdown.ok();
    assert!(markdown.stdout.starts_with("### pushpool plan: 13 to create, 1 to update, 0 unchanged\n"), "{}", markdown.stdout);
    assert!(markdown.stdout.contains("| **create** | IAM role | `PrefectEcsTaskExecutionRole` | missing |"), "{}", markdown.stdout);
    world.assert_no_writes_since(marks).await;
    assert!(docker_calls(&world.docker_log()).is_empty());
}

#[tokio::test]
async fn saved_plan_applies_exactly_and_then_nothing_is_left() {
    let world = World::new("planapply").await;
    let out = world.home.path().join("plan.json");
    world.run(&plan_args(&world, &["--out", out.to_str().unwrap()])).ok();
    let applied = world.run(&["apply", out.to_str().unwrap()]);
    applied.ok();
    assert!(applied.stdout.contains("Created work pool"), "{}", applied.stdout);
    assert!(world.work_pool().await.is_some());

    let again = world.run(&plan_args(&world, &["--detailed-exitcode"]));
    assert_eq!(again.code, 0, "{}", again.all());
    assert!(again.stdout.contains("Nothing to change"), "{}", again.stdout);
    let json = world.run(&plan_args(&world, &["--output", "json"]));
    let document: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(document["summary"]["create"], 0);
    assert_eq!(document["summary"]["update"], 0);
    world.assert_matches_schema(&json.stdout);
}

#[tokio::test]
async fn stale_plan_is_refused_naming_what_changed() {
    let world = World::new("stale").await;
    let aws = world.clients().await;
    let out = world.home.path().join("plan.json");
    world.run(&plan_args(&world, &["--out", out.to_str().unwrap()])).ok();
    aws.ecs.create_cluster().cluster_name("prefect-ecs-cluster").send().await.unwrap();

    let marks = world.marks().await;
    let run = world.run(&["apply", out.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("no longer matches what exists, so nothing was applied"), "{}", run.stderr);
    assert!(run.stderr.contains("ECS cluster prefect-ecs-cluster: planned create, now reuse"), "{}", run.stderr);
    assert!(run.stderr.contains("make and review a new plan"), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn plan_made_against_another_account_is_refused() {
    let first = World::new("acct").await;
    let out = first.home.path().join("plan.json");
    first.run(&plan_args(&first, &["--out", out.to_str().unwrap()])).ok();

    let second = World::new("acct").await;
    let marks = second.marks().await;
    let run = second.run(&["apply", out.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.all());
    let expected = format!("AWS account {}, region us-east-1, this run uses AWS account {}, region us-east-1", first.account.id, second.account.id);
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    second.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn pools_file_plans_shared_resources_once_and_applies_three_pools() {
    let world = World::new("fleet").await;
    let aws = world.clients().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pools.toml");
    let (a, b, c) = (format!("{}-a", world.pool), format!("{}-b", world.pool), format!("{}-c", world.pool));
    let pools = format!(
        "[[pool]]\nname = \"{a}\"\ntype = \"ecs:push\"\n\n[[pool]]\nname = \"{b}\"\ntype = \"ecs:push\"\n\n\
         # a third pool needs its own user: IAM allows two keys per user\n[[pool]]\nname = \"{c}\"\ntype = \"ecs\"\nset = {{ user = \"prefect-ecs-user-c\", policy = \"prefect-ecs-policy-c\" }}\n"
    );
    std::fs::write(&file, pools).unwrap();
    let file = file.to_str().unwrap();

    let marks = world.marks().await;
    let plan = world.run(&["plan", "--file", file, "--output", "json"]);
    plan.ok();
    world.assert_no_writes_since(marks).await;
    let document: Value = serde_json::from_str(&plan.stdout).unwrap();
    world.assert_matches_schema(&plan.stdout);
    let changes = document["changes"].as_array().unwrap();
    let named = |name: &str| changes.iter().filter(|c| c["name"] == name).collect::<Vec<_>>();
    assert_eq!(named("PrefectEcsTaskExecutionRole").len(), 1, "the role is one node");
    assert_eq!(named("PrefectEcsTaskExecutionRole")[0]["pools"], json!([a, b, c]));
    assert_eq!(named("prefect-ecs-cluster")[0]["pools"], json!([a, b, c]));
    assert_eq!(named("prefect-ecs-user")[0]["pools"], json!([a, b]));
    assert_eq!(named("prefect-ecs-user-c")[0]["pools"], json!([c]));
    assert_eq!(changes.iter().filter(|c| c["kind"] == "prefect.work_pool").count(), 3);
    assert_eq!(changes.iter().filter(|c| c["kind"] == "aws.iam_access_key").count(), 3, "one key per block");

    world.run(&["apply", "--file", file, "--yes"]).ok();
    for (pool, user) in [(&a, "prefect-ecs-user"), (&b, "prefect-ecs-user"), (&c, "prefect-ecs-user-c")] {
        let block = world.prefect_get(&format!("/block_types/slug/aws-credentials/block_documents/name/{pool}-aws-credentials")).await.unwrap();
        let key = block["data"]["aws_access_key_id"].as_str().unwrap();
        assert!(aws.access_keys(user).await.contains(&key.to_owned()), "{pool}'s block holds a key of {user}");
        let work_pool = world.prefect_get(&format!("/work_pools/{pool}")).await.unwrap();
        assert_eq!(work_pool["base_job_template"]["variables"]["properties"]["cluster"]["default"], "prefect-ecs-cluster");
    }
    assert_eq!(aws.vpcs_named("prefect-ecs-vpc").await.len(), 1);

    let marks = world.marks().await;
    let again = world.run(&["plan", "--file", file, "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}", again.all());
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn pools_wanting_one_resource_differently_are_a_conflict() {
    let world = World::new("clash").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pools.toml");
    let pools =
        format!("[[pool]]\nname = \"{0}-a\"\ntype = \"ecs:push\"\n\n[[pool]]\nname = \"{0}-b\"\ntype = \"ecs:push\"\nset = {{ user = \"other-user\" }}\n", world.pool);
    std::fs::write(&file, pools).unwrap();
    let marks = world.marks().await;
    let run = world.run(&["plan", "--file", file.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("aws.iam_policy 'prefect-ecs-policy'") && run.stderr.contains("attach_to=prefect-ecs-user against attach_to=other-user"), "{}", run.stderr);
    assert!(run.stderr.contains("--set policy=<name>"), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;
}

/// Writes a pools file of `count` `ecs:push` pools named `<pool>-1`…, all on the default IAM
/// user, and returns its path (in `dir`).
fn pools_on_one_user(world: &World, dir: &Path, count: usize) -> String {
    let pools: String = (1..=count).map(|n| format!("[[pool]]\nname = \"{}-{n}\"\ntype = \"ecs:push\"\n\n", world.pool)).collect();
    let file = dir.join("pools.toml");
    std::fs::write(&file, pools).unwrap();
    file.to_str().unwrap().to_owned()
}

/// IAM allows two access keys per user: three pools of one run on the default user are
/// refused before the plan reads anything, with a fix that works (a user of their own), not
/// a quota to raise.
#[tokio::test]
async fn three_pools_on_one_user_are_refused_before_the_plan_reads() {
    let world = World::new("threekeys").await;
    let dir = tempfile::tempdir().unwrap();
    let file = pools_on_one_user(&world, dir.path(), 3);
    for args in [&["plan", "--file", &file][..], &["apply", "--file", &file, "--yes"]] {
        let (marks, aws_mark) = (world.marks().await, world.aws.mark().await);
        let run = world.run(args);
        assert_eq!(run.code, 1, "{}", run.all());
        for expected in [
            "aws.iam_user 'prefect-ecs-user'",
            "3 pools of this run",
            "2 is the most it can have (IAM's limit)",
            "give 1 of these pools a user of its own: --set user=<name>",
            "`set = { user = \"<name>\" }` in the pools file",
        ] {
            assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
        }
        assert!(!run.stderr.contains("raise the quota"), "{}", run.stderr);
        world.assert_no_writes_since(marks).await;
        let reads: Vec<String> = world.aws.calls().await.into_iter().skip(aws_mark).map(|c| c.action).filter(|a| a != "GetCallerIdentity").collect();
        assert!(reads.is_empty(), "the graph alone refuses it, before any read: {reads:?}");
    }
}

/// A key the shared user already has counts: two new pools on a user with one key would make
/// three, so the plan refuses after its reads and before any write.
#[tokio::test]
async fn an_existing_key_counts_against_the_limit_of_a_shared_user() {
    let world = World::new("onekey").await;
    let aws = world.clients().await;
    aws.iam.create_user().user_name("prefect-ecs-user").send().await.unwrap();
    aws.iam.create_access_key().user_name("prefect-ecs-user").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = pools_on_one_user(&world, dir.path(), 2);
    let marks = world.marks().await;
    let run = world.run(&["apply", "--file", &file, "--yes"]);
    assert_eq!(run.code, 1, "{}", run.all());
    for expected in [
        "aws.iam_user 'prefect-ecs-user'",
        "it has 1 credential(s) that stay, this run would add 2",
        "2 is the most it can have",
        "give 1 of these pools a user of its own",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {}", run.stderr);
    }
    world.assert_no_writes_since(marks).await;
    assert_eq!(aws.access_keys("prefect-ecs-user").await.len(), 1);
}

/// Creates an IAM user holding `policy_file` (from policies/aws) and returns its credentials.
async fn operator(root: &support::Clients, user: &str, policy_file: &str) -> Account {
    let document = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/aws").join(policy_file)).unwrap();
    let policy = root.iam.create_policy().policy_name(format!("{user}-policy")).policy_document(document).send().await.unwrap();
    root.iam.create_user().user_name(user).send().await.unwrap();
    root.iam.attach_user_policy().user_name(user).policy_arn(policy.policy().unwrap().arn().unwrap()).send().await.unwrap();
    let key = root.iam.create_access_key().user_name(user).send().await.unwrap();
    let key = key.access_key().unwrap();
    Account { id: "123456789012".into(), access_key: key.access_key_id().into(), secret_key: key.secret_access_key().into(), session_token: None }
}

/// With IAM enforcement on (a private moto server: enforcement is global to a server), a
/// user holding only policies/aws/operator-plan.json can plan, and every write of an apply
/// is refused. (Under enforcement moto checks signatures against a body it re-encodes, which
/// fails any request with a space in a parameter whatever its permissions, so the apply
/// policy is proved by the next test instead.)
#[tokio::test]
async fn plan_policy_can_plan_and_cannot_write() {
    let moto = PrivateMoto::start().await;
    let root_account = Account { id: "123456789012".into(), access_key: "testing".into(), secret_key: "testing".into(), session_token: None };
    let root = support::clients(&moto.url, &root_account).await;
    let planner = operator(&root, "planner", "operator-plan.json").await;
    moto.enforce_iam().await;

    let world = World::on("leastpriv", moto.url.clone(), planner).await;
    // Under enforcement moto checks signatures, which a later page's request re-written by the
    // proxy no longer has: this channel answers whole.
    world.aws.page(0).await;
    let plan = world.run(&plan_args(&world, &["--detailed-exitcode"]));
    assert_eq!(plan.code, 2, "the plan policy is enough to plan: {}", plan.all());
    assert!(world.aws.calls().await.iter().all(|c| c.status != 403), "no read of the plan was refused");

    let mark = world.aws.mark().await;
    let denied = world.create(&["--yes"]);
    assert_eq!(denied.code, 1, "{}", denied.all());
    let writes: Vec<_> = world.aws.calls().await.into_iter().skip(mark).filter(|c| c.write).collect();
    assert!(!writes.is_empty());
    assert!(writes.iter().all(|c| c.status == 403), "every write was refused: {writes:?}");
    assert!(world.work_pool().await.is_none());
}

/// Every AWS action a fresh apply, a plan and a teardown make, as the proxy saw them, is
/// granted by the operator policy for it, and the plan policy grants reads only.
#[tokio::test]
async fn operator_policies_grant_every_action_pushpool_calls() {
    let apply_policy = support::policy_actions("operator-apply.json");
    let plan_policy = support::policy_actions("operator-plan.json");
    for action in &plan_policy {
        let verb = action.split_once(':').unwrap().1;
        assert!(["Get", "List", "Describe"].iter().any(|p| verb.starts_with(p)), "{action} is not a read");
        assert!(apply_policy.contains(action), "the apply policy lacks the plan's {action}");
    }
    let world = World::new("actions").await;
    world.clients().await.delete_default_vpc().await;
    let called = |calls: Vec<support::Call>| -> Vec<String> { calls.into_iter().map(|c| format!("{}:{}", c.service, c.action)).collect() };

    world.run(&plan_args(&world, &[])).ok();
    let mark = world.aws.mark().await;
    world.create(&["--yes"]).ok();
    let after_apply = world.aws.calls().await;
    world.run(&plan_args(&world, &[])).ok();
    let all = world.aws.calls().await;
    let plan_calls = called(all[..mark].iter().chain(&all[after_apply.len()..]).cloned().collect());
    let apply_calls = called(after_apply[mark..].to_vec());
    for action in &plan_calls {
        assert!(plan_policy.contains(action), "operator-plan.json lacks {action}");
    }
    for action in &apply_calls {
        assert!(apply_policy.contains(action), "operator-apply.json lacks {action}");
    }
    assert!(apply_calls.iter().any(|a| a == "iam:CreateRole") && plan_calls.iter().any(|a| a == "ec2:DescribeVpcs"));

    // A teardown's plan needs the plan policy only; the teardown itself its own policy.
    let teardown_policy = support::policy_actions("operator-teardown.json");
    let mark = world.aws.mark().await;
    world.run(&["work-pool", "deprovision", &world.pool, "--dry-run"]).ok();
    let planned = world.aws.mark().await;
    world.run(&["work-pool", "deprovision", &world.pool, "--yes"]).ok();
    let all = world.aws.calls().await;
    for action in called(all[mark..planned].to_vec()) {
        assert!(plan_policy.contains(&action), "operator-plan.json lacks {action}, which a teardown plan calls");
    }
    let teardown_calls = called(all[planned..].to_vec());
    for action in &teardown_calls {
        assert!(teardown_policy.contains(action), "operator-teardown.json lacks {action}");
    }
    assert!(teardown_calls.iter().any(|a| a == "ec2:DeleteVpc") && teardown_calls.iter().any(|a| a == "iam:DeleteRole"));
    for action in &teardown_policy {
        assert!(!action.contains(":Create") && !action.contains(":Put") && !action.contains(":Attach"), "{action} does not belong to a teardown");
    }
}

#[tokio::test]
async fn dry_run_and_plan_print_the_same_plan() {
    let world = World::new("same").await;
    let from_plan = world.run(&plan_args(&world, &["--output", "markdown"]));
    let from_dry_run = world.create(&["--dry-run", "--output", "markdown"]);
    from_plan.ok();
    from_dry_run.ok();
    assert_eq!(from_plan.stdout, from_dry_run.stdout);
    let refused = world.create(&["--output", "json", "--yes"]);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("add --dry-run"), "{}", refused.stderr);
}
