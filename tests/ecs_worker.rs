//! Hybrid `ecs` pools whose worker pushpool runs as an ECS service (`--worker`), against moto
//! (ECS services and task definitions, Secrets Manager, CloudWatch Logs, IAM) and the real
//! Prefect server. The open-source server runs without auth: a test that sets PREFECT_API_KEY
//! stands for a server behind one (the server ignores the key; pushpool stores it).

mod support;

use serde_json::{Value, json};
use support::{Channel, World, hold_group_after, kill_after_writes, unique};

const API_KEY: &str = "pnu_worker_api_key_5f0c2e7a91b3";
const ROLE: &str = "prefect-ecs-worker-role";
const EXECUTION_ROLE: &str = "PrefectEcsTaskExecutionRole";
const CLUSTER: &str = "prefect-ecs-cluster";
const PUBLIC_URL: &str = "https://prefect.example.com/api";

fn family(world: &World) -> String {
    format!("prefect-worker-{}", world.pool)
}

/// `work-pool create <pool> --type ecs --provision-infra --worker` plus `extra`, with the API
/// key in the environment when `api_key`.
fn create(world: &World, extra: &[&str], api_key: bool) -> support::Run {
    let mut args = vec!["work-pool", "create", &world.pool, "--type", "ecs", "--provision-infra", "--worker"];
    args.extend_from_slice(extra);
    run(world, &args, api_key)
}

fn run(world: &World, args: &[&str], api_key: bool) -> support::Run {
    let mut command = world.command(args);
    if api_key {
        command.env("PREFECT_API_KEY", API_KEY);
    }
    let run = world.run_command(&mut command);
    world.assert_none_leaked(&run, &[API_KEY.to_owned()]);
    run
}

/// What the worker is made of in AWS, as the tests compare it.
async fn worker_state(world: &World) -> Value {
    let aws = world.clients().await;
    let role_policies = match aws.iam.list_attached_role_policies().role_name(ROLE).send().await {
        Ok(out) => out.attached_policies().iter().map(|p| json!(p.policy_name())).collect(),
        Err(_) => Vec::new(),
    };
    let inline = match aws.iam.list_role_policies().role_name(EXECUTION_ROLE).send().await {
        Ok(out) => out.policy_names().to_vec(),
        Err(_) => Vec::new(),
    };
    let services = aws.ecs.describe_services().cluster(CLUSTER).services(family(world)).send().await.ok();
    let service = services.as_ref().and_then(|s| s.services().iter().find(|s| s.status() == Some("ACTIVE")).cloned());
    let revisions = aws.ecs.list_task_definitions().family_prefix(family(world)).status(aws_sdk_ecs::types::TaskDefinitionStatus::Active).send().await.unwrap();
    let secret = aws.secrets.describe_secret().secret_id(format!("prefect-worker-{}-api-key", world.pool)).send().await.ok();
    let logs = aws.logs.describe_log_groups().log_group_name_prefix(format!("/prefect/workers/{}", world.pool)).send().await.unwrap();
    json!({
        "role": aws.iam.get_role().role_name(ROLE).send().await.is_ok(),
        "role_policies": role_policies,
        "execution_role_inline": inline,
        "user": aws.iam.get_user().user_name("prefect-ecs-user").send().await.is_ok(),
        "service": service.as_ref().map(|s| json!({"desired": s.desired_count(), "task_definition": s.task_definition()})),
        "revisions": revisions.task_definition_arns().len(),
        "secret": secret.map(|s| s.deleted_date().is_none()),
        "log_group": logs.log_groups().len(),
    })
}

/// The newest revision's container: image, command, environment and secrets.
async fn container(world: &World) -> Value {
    let aws = world.clients().await;
    let out = aws.ecs.describe_task_definition().task_definition(family(world)).send().await.unwrap();
    let task = out.task_definition().unwrap();
    let c = &task.container_definitions()[0];
    json!({
        "image": c.image(),
        "command": c.command(),
        "environment": c.environment().iter().map(|p| (p.name().unwrap().to_owned(), json!(p.value()))).collect::<serde_json::Map<_, _>>(),
        "secrets": c.secrets().iter().map(|s| (s.name().to_owned(), json!(s.value_from()))).collect::<serde_json::Map<_, _>>(),
        "execution_role": task.execution_role_arn(),
        "task_role": task.task_role_arn(),
        "log_group": c.log_configuration().and_then(|l| l.options()).and_then(|o| o.get("awslogs-group")),
    })
}

#[tokio::test]
async fn a_fresh_worker_runs_with_a_role_not_a_key_and_a_rerun_writes_nothing() {
    let world = World::new("wrk").await;
    let created = create(&world, &["--yes"], false);
    assert_eq!(created.code, 0, "{}", created.all());

    // The worker's API URL is said, with why the tasks cannot reach a loopback address.
    let api_url = format!("{}/api", world.prefect.url());
    assert!(created.stderr.contains(&format!("the worker of '{}' will use the Prefect API at {api_url}: a loopback address", world.pool)), "{}", created.stderr);
    assert!(created.stderr.contains("--worker-api-url"), "{}", created.stderr);

    // A role, no user, no key; the pool's permissions on the role; no secret without an API key.
    let state = worker_state(&world).await;
    assert_eq!(state["role"], true);
    assert_eq!(state["role_policies"], json!(["prefect-ecs-policy"]));
    assert_eq!(state["user"], false, "no IAM user: {state}");
    assert_eq!(state["secret"], Value::Null, "no API key, no secret");
    assert_eq!(state["execution_role_inline"], json!(["prefect-create-log-groups"]), "no read grant without a secret");
    assert_eq!(state["log_group"], 1);
    assert_eq!(state["revisions"], 1);
    assert_eq!(state["service"]["desired"], 1);

    let aws = world.clients().await;
    let account = &world.account.id;
    let container = container(&world).await;
    assert_eq!(container["image"], "prefecthq/prefect:3-latest");
    assert_eq!(container["environment"], json!({"PREFECT_API_URL": api_url, "PREFECT_WORKER_POOL": world.pool}));
    assert_eq!(container["secrets"], json!({}));
    assert!(
        container["command"][2].as_str().unwrap().contains("pip install --no-cache-dir prefect-aws; exec prefect worker start --pool \"$PREFECT_WORKER_POOL\" --type ecs")
    );
    assert_eq!(container["task_role"], format!("arn:aws:iam::{account}:role/{ROLE}"));
    assert_eq!(container["execution_role"], format!("arn:aws:iam::{account}:role/{EXECUTION_ROLE}"));
    assert_eq!(container["log_group"], format!("/prefect/workers/{}", world.pool));

    // The service runs in the pool's subnets and security group, which the pool names too.
    let defaults = world.job_variable_defaults().await;
    assert!(defaults["aws_credentials"].is_null() || defaults["aws_credentials"] == json!({}), "the worker's role is used: {}", defaults["aws_credentials"]);
    assert_eq!(defaults["cluster"], CLUSTER);
    let service = aws.ecs.describe_services().cluster(CLUSTER).services(family(&world)).send().await.unwrap();
    let vpc = service.services()[0].network_configuration().unwrap().awsvpc_configuration().unwrap();
    let mut subnets = vpc.subnets().to_vec();
    subnets.sort();
    let mut wanted: Vec<String> =
        defaults["network_configuration"]["awsvpcConfiguration"]["subnets"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    wanted.sort();
    assert_eq!(subnets, wanted);
    assert_eq!(vpc.security_groups(), [defaults["network_configuration"]["awsvpcConfiguration"]["securityGroups"][0].as_str().unwrap()]);
    assert!(created.stdout.contains(&format!("aws logs tail \"/prefect/workers/{}\" --follow", world.pool)), "{}", created.stdout);
    assert!(!created.stdout.contains("prefect worker start"), "no need to start a worker by hand:\n{}", created.stdout);

    let marks = world.marks().await;
    let rerun = run(&world, &["work-pool", "provision-infra", &world.pool, "--yes"], false);
    assert!(rerun.stdout.contains("Nothing to change"), "the worker is remembered and as wanted:\n{}", rerun.all());
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn an_api_key_lives_in_a_secret_only_the_execution_role_reads_and_never_in_the_task_definition() {
    let world = World::new("wrkkey").await;
    let mark = world.aws.mark().await;
    let plan = run(&world, &["plan", &world.pool, "--type", "ecs", "--worker", "--output", "json"], true);
    let plan_policy = support::policy_actions("operator-plan.json");
    for call in &world.aws.calls().await[mark..] {
        assert!(plan_policy.contains(&format!("{}:{}", call.service, call.action)), "operator-plan.json lacks {}:{}", call.service, call.action);
    }
    let document: Value = serde_json::from_str(&plan.stdout).unwrap_or_else(|e| panic!("{e}: {}", plan.all()));
    let kinds: Vec<&str> = document["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"aws.secret") && kinds.contains(&"aws.iam_role_policy"), "{kinds:?}");
    assert!(!plan.stdout.contains(API_KEY));

    let created = create(&world, &["--yes"], true);
    assert_eq!(created.code, 0, "{}", created.all());
    let aws = world.clients().await;
    let secret_name = format!("prefect-worker-{}-api-key", world.pool);

    // Everything is tagged like the rest.
    let ours = support::tag_pairs([("managed-by", "pushpool"), ("prefect.work-pool", world.pool.as_str())]);
    let described = aws.secrets.describe_secret().secret_id(&secret_name).send().await.unwrap();
    assert_eq!(support::tag_pairs(described.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap()))), ours);
    let task = aws.ecs.describe_task_definition().task_definition(family(&world)).include(aws_sdk_ecs::types::TaskDefinitionField::Tags).send().await.unwrap();
    assert_eq!(support::tag_pairs(task.tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap()))), ours);
    let service = aws.ecs.describe_services().cluster(CLUSTER).services(family(&world)).include(aws_sdk_ecs::types::ServiceField::Tags).send().await.unwrap();
    assert_eq!(support::tag_pairs(service.services()[0].tags().iter().map(|t| (t.key().unwrap(), t.value().unwrap()))), ours);
    let role = aws.iam.get_role().role_name(ROLE).send().await.unwrap();
    assert_eq!(support::tag_pairs(role.role().unwrap().tags().iter().map(|t| (t.key(), t.value()))), ours);
    let secret = aws.secrets.get_secret_value().secret_id(&secret_name).send().await.unwrap();
    assert_eq!(secret.secret_string(), Some(API_KEY));
    let arn = secret.arn().unwrap().to_owned();

    let container = container(&world).await;
    assert_eq!(container["secrets"], json!({"PREFECT_API_KEY": arn}));
    assert!(!container["environment"].as_object().unwrap().contains_key("PREFECT_API_KEY"));
    let described = aws.ecs.describe_task_definition().task_definition(family(&world)).send().await.unwrap();
    assert!(!format!("{described:?}").contains(API_KEY), "the key is in no task definition");

    // Only the execution role may read it: its inline policy names the secret's ARN; the
    // worker's role (the pool's permissions) has no Secrets Manager action at all.
    let grant = aws.iam.get_role_policy().role_name(EXECUTION_ROLE).policy_name(&secret_name).send().await.unwrap();
    let grant = percent_encoding::percent_decode_str(grant.policy_document()).decode_utf8_lossy().into_owned();
    let grant: Value = serde_json::from_str(&grant).unwrap();
    assert_eq!(grant["Statement"][0]["Action"], "secretsmanager:GetSecretValue");
    assert_eq!(grant["Statement"][0]["Resource"], arn.as_str());
    let policy = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/aws/ecs-user-policy.json")).unwrap();
    assert!(!policy.contains("secretsmanager"));

    let marks = world.marks().await;
    let rerun = run(&world, &["work-pool", "provision-infra", &world.pool, "--yes"], true);
    assert!(rerun.stdout.contains("Nothing to change"), "{}", rerun.all());
    world.assert_no_writes_since(marks).await;

    // A new API key is one secret write; the task definition, which names the secret, stays.
    let mut command = world.command(&["work-pool", "provision-infra", &world.pool, "--yes"]);
    command.env("PREFECT_API_KEY", "pnu_rotated_key_0a1b2c3d4e5f");
    let rotated = world.run_command(&mut command);
    assert_eq!(rotated.code, 0, "{}", rotated.all());
    assert!(!rotated.all().contains("pnu_rotated_key_0a1b2c3d4e5f"));
    let writes: Vec<String> = world.aws.writes_since(marks.0).await;
    assert_eq!(writes, ["secretsmanager PutSecretValue"], "{writes:?}");
}

#[tokio::test]
async fn a_changed_image_is_one_new_revision_and_one_service_update_and_is_remembered() {
    let world = World::new("wrkimg").await;
    create(&world, &["--yes"], false).ok();
    let first = worker_state(&world).await["service"]["task_definition"].clone();

    let marks = world.marks().await;
    let changed = run(&world, &["work-pool", "provision-infra", &world.pool, "--worker-image", "example.com/prefect-aws:3", "--yes"], false);
    assert_eq!(changed.code, 0, "{}", changed.all());
    assert!(changed.stdout.contains("image differ"), "{}", changed.stdout);
    let writes = world.aws.writes_since(marks.0).await;
    assert_eq!(writes, ["ecs RegisterTaskDefinition", "ecs UpdateService"], "{writes:?}");
    let state = worker_state(&world).await;
    assert_ne!(state["service"]["task_definition"], first);
    assert_eq!(container(&world).await["image"], "example.com/prefect-aws:3");

    // The image is remembered: a run without the flag changes nothing.
    let marks = world.marks().await;
    let again = run(&world, &["work-pool", "provision-infra", &world.pool, "--yes"], false);
    assert!(again.stdout.contains("Nothing to change"), "{}", again.all());
    world.assert_no_writes_since(marks).await;

    // A worker setting without the worker is refused by name.
    let refused = run(&world, &["work-pool", "create", &unique("nowrk"), "--type", "ecs", "--worker-image", "x", "--yes"], false);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("--worker-image: is a setting of --worker"), "{}", refused.stderr);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_a_hybrid_pool_without_worker_says_how_to_start_one_and_cannot_get_one_later() {
    let world = World::new("wrkdry").await;
    let marks = world.marks().await;
    let dry = create(&world, &["--dry-run"], true);
    assert_eq!(dry.code, 0, "{}", dry.all());
    for part in [ROLE, "ECS service", "ECS task definition", "log group", "Secrets Manager secret", "IAM inline policy"] {
        assert!(dry.stdout.contains(part), "the plan lacks {part}:\n{}", dry.stdout);
    }
    assert!(!dry.stdout.contains("prefect-ecs-user"), "no user in a worker's plan:\n{}", dry.stdout);
    world.assert_no_writes_since(marks).await;

    let plain = run(&world, &["work-pool", "create", &world.pool, "--type", "ecs", "--provision-infra", "--yes"], false);
    assert_eq!(plain.code, 0, "{}", plain.all());
    assert!(plain.stdout.contains("pip install prefect-aws"), "{}", plain.stdout);
    assert!(plain.stdout.contains(&format!("prefect worker start --pool \"{}\" --type \"ecs\"", world.pool)), "{}", plain.stdout);

    // A worker added later would leave the pool's user, key and block behind: refused, with how.
    let marks = world.marks().await;
    let later = run(&world, &["work-pool", "provision-infra", &world.pool, "--worker", "--yes"], false);
    assert_eq!(later.code, 1, "{}", later.all());
    assert!(later.stderr.contains("was provisioned without --worker, which replaces what it built for it (IAM user whose key"), "{}", later.stderr);
    assert!(later.stderr.contains(&format!("pushpool work-pool deprovision {}", world.pool)), "{}", later.stderr);
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn a_teardown_stops_the_worker_and_returns_to_the_start_keeping_the_logs_unless_forced() {
    let world = World::new("wrkdown").await;
    let start = worker_state(&world).await;
    create(&world, &["--yes"], true).ok();
    let called = |calls: &[support::Call]| -> Vec<String> { calls.iter().map(|c| format!("{}:{}", c.service, c.action)).collect() };
    let apply_policy = support::policy_actions("operator-apply.json");
    for action in called(&world.aws.calls().await) {
        assert!(apply_policy.contains(&action), "operator-apply.json lacks {action}, which a worker's apply calls");
    }

    let mark = world.aws.mark().await;
    let down = run(&world, &["work-pool", "deprovision", &world.pool, "--yes"], true);
    assert_eq!(down.code, 0, "{}", down.all());
    assert!(down.stdout.contains("holds the worker's logs; --force deletes it"), "{}", down.stdout);
    assert!(down.stdout.contains("recoverable for 7 days, the shortest window AWS allows") || down.all().contains("7 days"), "{}", down.all());
    let mut expected = start.clone();
    expected["log_group"] = json!(1);
    expected["secret"] = json!(false); // scheduled for deletion, recoverable for 7 days
    assert_eq!(worker_state(&world).await, expected, "all but the log group went");
    assert!(world.work_pool().await.is_none());
    let teardown_policies = [support::policy_actions("operator-plan.json"), support::policy_actions("operator-teardown.json")].concat();
    for action in called(&world.aws.calls().await[mark..]) {
        assert!(teardown_policies.contains(&action), "the teardown policies lack {action}");
    }

    let forced = run(&world, &["work-pool", "deprovision", &world.pool, "--type", "ecs", "--worker", "--force", "--yes"], true);
    assert_eq!(forced.code, 0, "{}", forced.all());
    expected["log_group"] = json!(0);
    assert_eq!(worker_state(&world).await, expected);

    // Within the recovery window, a new worker of that name restores the secret.
    let again = create(&world, &["--yes"], true);
    assert!(again.stdout.contains("scheduled for deletion: restored"), "{}", again.all());
    assert_eq!(worker_state(&world).await["secret"], true);
}

/// SIGKILL after each write of a fresh run (API key included), then a re-run: it converges to
/// one service, one revision, one secret, and a further run writes nothing.
#[tokio::test]
async fn roles_iam_has_not_propagated_yet_are_waited_out_and_the_wait_is_named() {
    let world = World::new("wrkiam").await;
    // What ECS answers, for some seconds, about a role IAM made moments ago.
    let assume = "ECS was unable to assume the role 'arn:aws:iam::123456789012:role/prefect-ecs-worker-role' that was provided for this task.";
    world
        .aws
        .set_faults(json!({
            "RegisterTaskDefinition": {"kind": "error", "status": 400, "code": "ClientException", "message": "Role is not valid", "times": 2},
            "CreateService": {"kind": "error", "status": 400, "code": "InvalidParameterException", "message": assume, "times": 2},
        }))
        .await;
    let created = create(&world, &["--yes"], false);
    assert_eq!(created.code, 0, "{}", created.all());
    assert!(created.stderr.contains(&format!("waiting for IAM to make role(s) {EXECUTION_ROLE} and {ROLE} usable by ECS")), "{}", created.stderr);
    assert!(created.stderr.contains("waiting for IAM to make the task definition's roles usable by ECS"), "{}", created.stderr);
    let calls = world.aws.calls().await;
    for action in ["RegisterTaskDefinition", "CreateService"] {
        let statuses: Vec<u16> = calls.iter().filter(|c| c.action == action).map(|c| c.status).collect();
        assert_eq!(statuses, [400, 400, 200], "{action} refused twice, then accepted");
    }
    let state = worker_state(&world).await;
    assert_eq!((state["revisions"].clone(), state["service"]["desired"].clone()), (json!(1), json!(1)), "one revision, one service: {state}");
}

#[tokio::test]
async fn a_role_ecs_never_accepts_ends_the_wait_with_the_error_and_what_to_do() {
    let world = World::new("wrkiam").await;
    world.aws.set_faults(json!({"RegisterTaskDefinition": {"kind": "error", "status": 400, "code": "ClientException", "message": "Role is not valid"}})).await;
    let created = create(&world, &["--yes"], false);
    assert_eq!(created.code, 1, "{}", created.all());
    let tries = world.aws.calls().await.iter().filter(|c| c.action == "RegisterTaskDefinition").count();
    assert!((2..=30).contains(&tries), "bounded: {tries} tries");
    assert!(
        created.stderr.contains(&format!("ECS task definition {}: ecs:RegisterTaskDefinition failed: Role is not valid (ClientException)", family(&world))),
        "{}",
        created.stderr
    );
    assert!(created.stderr.contains(&format!("pushpool waited {tries} times for IAM to make role(s) {EXECUTION_ROLE} and {ROLE} usable by ECS")), "{}", created.stderr);
    assert!(created.stderr.contains("run again"), "{}", created.stderr);
}

#[tokio::test]
async fn a_run_killed_at_any_write_converges_on_a_rerun() {
    let mut k = 1;
    loop {
        let world = World::new("wrkkill").await;
        let group = unique("wrk-group");
        let aws = Channel::open_in(&world.sandbox, &world.moto, Some(&group)).await;
        let prefect = Channel::open_in(&world.sandbox, &world.sandbox.prefect, Some(&group)).await;
        hold_group_after(&world.sandbox, &group, k).await;
        // One API URL for both runs, though they reach the server through different channels.
        let args = ["work-pool", "create", &world.pool, "--type", "ecs", "--provision-infra", "--worker", "--worker-api-url", PUBLIC_URL, "--yes"];
        let mut command = world.command(&args);
        command.env("AWS_ENDPOINT_URL", aws.url()).env("PREFECT_API_URL", format!("{}/api", prefect.url())).env("PREFECT_API_KEY", API_KEY);
        kill_after_writes(&mut command, &[&aws, &prefect], k).await;
        let writes = aws.writes_since(0).await.len() + prefect.writes_since(0).await.len();

        let rerun = create(&world, &["--worker-api-url", PUBLIC_URL, "--yes"], true);
        assert_eq!(rerun.code, 0, "killed after write {k}, the re-run failed:\n{}", rerun.all());
        let state = worker_state(&world).await;
        assert_eq!(
            (state["service"]["desired"].clone(), state["secret"].clone(), state["log_group"].clone()),
            (json!(1), json!(true), json!(1)),
            "killed after write {k}: {state}"
        );
        assert_eq!(state["revisions"], 1, "killed after write {k}: {state}");
        let again = run(&world, &["work-pool", "provision-infra", &world.pool, "--yes"], true);
        assert!(again.stdout.contains("Nothing to change"), "killed after write {k}: {}", again.all());
        if writes < k {
            break;
        }
        k += 1;
    }
    assert!(k > 10, "a fresh run makes more than 10 writes, each a kill point ({k})");
}

#[tokio::test]
async fn a_saved_plan_keeps_the_worker_and_its_settings() {
    let world = World::new("wrkplan").await;
    let saved = world.home.path().join("plan.json");
    let plan = run(&world, &["plan", &world.pool, "--type", "ecs", "--worker", "--worker-image", "example.com/worker:1", "--out", &saved.display().to_string()], false);
    assert_eq!(plan.code, 0, "{}", plan.all());
    let text = std::fs::read_to_string(&saved).unwrap();
    world.assert_matches_schema(&text);
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["pools"][0]["addons"], json!(["worker"]));
    assert_eq!(document["pools"][0]["options"], json!({"worker-image": "example.com/worker:1"}));
    let applied = run(&world, &["apply", &saved.display().to_string()], false);
    assert_eq!(applied.code, 0, "{}", applied.all());
    assert_eq!(container(&world).await["image"], "example.com/worker:1");
    assert_eq!(worker_state(&world).await["service"]["desired"], 1);
}
