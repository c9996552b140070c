//! Bad input and hostile states, as a table: each case's setup, command, the exit code and
//! message expected, and what must not have happened (no write anywhere, the profile file
//! byte for byte as it was). Against moto and the real Prefect server.

mod support;

use std::future::Future;
use std::pin::Pin;

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;
use support::World;

/// What a case prepares before the run.
type Setup = for<'a> fn(&'a World) -> Pin<Box<dyn Future<Output = ()> + 'a>>;

struct Case {
    name: &'static str,
    setup: Option<Setup>,
    /// The arguments; `{pool}` is the world's pool name.
    args: &'static [&'static str],
    /// Environment changes: an empty value removes the variable.
    env: &'static [(&'static str, &'static str)],
    code: i32,
    /// Every one of these is in stderr (or stdout for a success).
    expect: &'static [&'static str],
    /// The failure comes after apply started: writes happened, and the message says what exists.
    mid_run: bool,
}

const CREATE: &[&str] = &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes"];

fn cases() -> Vec<Case> {
    let case = |name, args, env, code, expect| Case { name, setup: None, args, env, code, expect, mid_run: false };
    vec![
        case("empty pool name", &["work-pool", "create", "", "--type", "ecs:push", "--provision-infra", "--yes"], &[], 1, &["work pool name: is empty", "fix:"]),
        case("slash in pool name", &["work-pool", "create", "a/b", "--type", "ecs:push", "--provision-infra", "--yes"], &[], 1, &["contains '/'", "fix:"]),
        case("reserved pool name", &["work-pool", "create", "prefect-pool", "--type", "ecs:push", "--provision-infra", "--yes"], &[], 1, &["which Prefect reserves", "fix:"]),
        case("a block name Prefect refuses", &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--set", "credentials=My_Block"], &[], 1, &["block name 'My_Block'", "--set credentials="]),
        case("unknown type", &["work-pool", "create", "{pool}", "--type", "kubernetes:push", "--provision-infra", "--yes"], &[], 1, &["work pool type 'kubernetes:push'", "use one of: ecs:push, ecs"]),
        case("type without provisioning", &["work-pool", "create", "{pool}", "--type", "process", "--provision-infra", "--yes"], &[], 1, &["work pool type 'process'", "cannot provision"]),
        case("contradicting flags", &["plan", "{pool}", "--type", "ecs:push", "--file", "pools.toml"], &[], 1, &["cannot be used with"]),
        case("JSON output for an apply", &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--output", "json"], &[], 1, &["--output json", "add --dry-run"]),
        case("unknown resource id", &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--set", "clustr=x"], &[], 1, &["--set clustr=...", "use one of: execution_role"]),
        case("malformed --set", &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--set", "cluster"], &[], 1, &["is not ID=NAME"]),
        case("missing AWS credentials", CREATE, &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", ""), ("AWS_SESSION_TOKEN", "")], 1, &["AWS credentials: ", "no credentials found in chain", "fix: configure credentials"]),
        case("missing AWS region", CREATE, &[("AWS_REGION", "")], 1, &["AWS region: none is configured", "set AWS_REGION"]),
        case("a region that does not exist", CREATE, &[("AWS_REGION", "xx-nowhere-1")], 1, &["HTTP 500", "check the region (AWS_REGION)"]),
        case("no Prefect API configured", CREATE, &[("PREFECT_HOME", "/nonexistent"), ("PREFECT_API_URL", "")], 1, &["Prefect API URL", "PREFECT_API_URL"]),
        case("Prefect server down", CREATE, &[("PREFECT_API_URL", "http://127.0.0.1:9/api")], 1, &["Prefect API at http://127.0.0.1:9/api: unreachable", "fix: start the server"]),
        case("provision-infra on a missing pool", &["work-pool", "provision-infra", "{pool}", "--yes"], &[], 1, &["does not exist", "pushpool work-pool create"]),
        case("JSON output for a teardown", &["work-pool", "deprovision", "{pool}", "--yes", "--output", "json"], &[], 1, &["--output json", "add --dry-run"]),
        case("teardown of a pool that never existed", &["work-pool", "deprovision", "{pool}", "--type", "ecs:push", "--yes"], &[], 0, &["Nothing to delete"]),
        // Nothing of it exists (no pool, no record, no block): that is said, not asked about.
        case("teardown of a pool that is fully gone, without its type", &["work-pool", "deprovision", "{pool}", "--yes"], &[], 0, &["Nothing to delete: work pool '", "nothing pushpool built for it is left"]),
        Case {
            name: "teardown with the wrong type",
            setup: Some(|w| Box::pin(async { w.prefect_send(Method::POST, "/work_pools/", json!({"name": w.pool, "type": "ecs"})).await; })),
            args: &["work-pool", "deprovision", "{pool}", "--type", "ecs:push", "--yes"], env: &[], code: 1, expect: &["has type 'ecs', not 'ecs:push'", "leave --type out"], mid_run: false,
        },
        Case {
            name: "expired AWS token",
            setup: Some(|w| Box::pin(w.aws.set_faults(json!({"GetCallerIdentity": {"status": 403, "code": "ExpiredToken", "message": "The security token included in the request is expired"}})))),
            args: CREATE, env: &[], code: 1, expect: &["sts:GetCallerIdentity failed: The security token included in the request is expired", "refresh the AWS credentials"], mid_run: false,
        },
        Case {
            name: "pool of another type",
            setup: Some(|w| Box::pin(async { w.prefect_send(Method::POST, "/work_pools/", json!({"name": w.pool, "type": "ecs"})).await; })),
            args: CREATE, env: &[], code: 1, expect: &["has type 'ecs', not 'ecs:push'", "fix:"], mid_run: false,
        },
        Case {
            name: "malformed profiles.toml",
            setup: Some(|w| Box::pin(async { std::fs::write(w.profiles_path(), "active = [\n[profiles.sandbox\n").unwrap() })),
            args: CREATE, env: &[], code: 1, expect: &["profiles.toml: not valid TOML", "left it untouched"], mid_run: false,
        },
        Case {
            name: "private address space exhausted",
            setup: Some(|w| Box::pin(async {
                let aws = w.clients().await;
                let blocks = (0..=255).map(|b| format!("10.{b}.0.0/16")).chain((16..=31).map(|b| format!("172.{b}.0.0/16"))).chain(["192.168.0.0/16".to_string()]);
                let creates = blocks.map(|cidr| { let ec2 = aws.ec2.clone(); async move { ec2.create_vpc().cidr_block(cidr).send().await.unwrap(); } });
                join_all(creates).await;
            })),
            args: CREATE, env: &[], code: 1, expect: &["every /16 of private address space", "fix: delete an unused VPC"], mid_run: false,
        },
        Case {
            name: "VPC quota reached during apply",
            setup: Some(|w| Box::pin(w.aws.set_faults(json!({"CreateVpc": {"status": 400, "code": "VpcLimitExceeded", "message": "The maximum number of VPCs has been reached."}})))),
            args: CREATE, env: &[], code: 1, expect: &["VPC prefect-ecs-vpc: ec2:CreateVpc failed: The maximum number of VPCs has been reached.", "raise the quota", "written before the failure:"], mid_run: true,
        },
        Case {
            name: "Prefect server failing mid-run",
            setup: Some(|w| Box::pin(w.prefect.set_faults(json!({"POST /api/work_pools/": {"kind": "5xx"}})))),
            args: CREATE, env: &[], code: 1, expect: &["work pool '", "503", "written before the failure:", "run the same command again"], mid_run: true,
        },
        Case {
            name: "an apply in progress from another machine",
            setup: Some(|w| {
                Box::pin(async {
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                    let marker = json!({
                        "name": format!("pushpool_apply_aws_{}_0000000003", w.account.id),
                        // Renewed just now by a run elsewhere: no lock file of its token on this machine.
                        "value": {"token": "00c0ffee00c0ffee", "pid": 4242, "since": now, "renewed": now, "done": false},
                        "tags": ["pushpool_apply"],
                    });
                    assert_eq!(w.prefect_send(Method::POST, "/variables/", marker).await, 201);
                })
            }),
            args: CREATE, env: &[], code: 1,
            expect: &["apply to aws_", "another pushpool run (pid 4242, started ", " s ago, last renewed ", "is applying to it; nothing was changed", "run again once it is done"],
            mid_run: false,
        },
        Case {
            name: "fewer than three availability zones",
            setup: None, args: CREATE, env: &[("AWS_REGION", "us-west-1")], code: 0,
            expect: &["10.0.0.0/18 in us-west-1a, 10.0.64.0/18 in us-west-1b"], mid_run: false,
        },
    ]
}

#[tokio::test]
async fn bad_input_and_hostile_states() {
    let table = cases();
    for case in &table {
        let world = World::new("bad").await;
        if let Some(setup) = case.setup {
            setup(&world).await;
        }
        let profile_before = std::fs::read(world.profiles_path()).unwrap();
        let pool_before = world.work_pool().await.is_some();
        let marks = world.marks().await;
        let args: Vec<String> = case.args.iter().map(|a| a.replace("{pool}", &world.pool)).collect();
        let mut command = world.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        command.current_dir(world.home.path());
        for (key, value) in case.env {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        let run = world.run_command(&mut command);
        assert_eq!(run.code, case.code, "{}: exit code\n{}", case.name, run.all());
        let shown = if case.code == 0 { &run.stdout } else { &run.stderr };
        for expected in case.expect {
            assert!(shown.contains(expected), "{}: expected '{expected}' in:\n{shown}", case.name);
        }
        if case.code != 0 {
            assert!(run.stderr.contains("error: "), "{}: {}", case.name, run.stderr);
        }
        if case.code != 0 && !case.mid_run {
            assert_eq!(std::fs::read(world.profiles_path()).unwrap(), profile_before, "{}: the profile is untouched", case.name);
            world.assert_no_writes_since(marks).await;
            assert_eq!(world.work_pool().await.is_some(), pool_before, "{}: no pool created or deleted", case.name);
        }
    }
    println!("bad input and hostile states: {} cases", table.len());
}

/// Names and tag values AWS refuses (and moto takes): each is refused by the plan before any
/// AWS call at all, naming the value, the rule and how to pick another. `{pool}` is the
/// world's pool name, `{long}` a 300-character one.
#[tokio::test]
async fn names_aws_refuses_are_refused_before_any_aws_call() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("a pool name longer than a tag value", &["{long}"], &["work pool name '", "(300 characters)", "IAM tag values are 0 to 256", "choose a pool name of"]),
        ("a pool name with a newline", &["{pool}\nx"], &["\\nx'", "contains '\\n'", "API_Tag.html"]),
        ("an uppercase repository", &["{pool}", "--set", "repository=Prefect_Flows"], &["ECR repository name 'Prefect_Flows' (resource 'repository')", "contains 'P'", "--set repository=<name>"]),
        ("a 65-character user", &["{pool}", "--set", "user=uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"], &["IAM user name '", "has 65 characters", "API_CreateUser.html", "--set user=<name>"]),
        ("a user with a space", &["{pool}", "--set", "user=team user"], &["IAM user name 'team user' (resource 'user')", "contains a space"]),
        ("a security group named like an id", &["{pool}", "--set", "security_group=sg-team"], &["security group name 'sg-team'", "starts with 'sg-'"]),
        ("a worker named from a pool name with a space", &["{pool} a", "--worker"], &["(resource 'worker_logs')", "log group name '/prefect/workers/", " a'", "contains a space", "a pool name that makes '/prefect/workers/{pool}' fit"]),
    ];
    for (name, args, expected) in cases {
        let world = World::new("names").await;
        let long = "p".repeat(300);
        let mut args: Vec<String> = args.iter().map(|a| a.replace("{pool}", &world.pool).replace("{long}", &long)).collect();
        let pool_type = if args.iter().any(|a| a == "--worker") { "ecs" } else { "ecs:push" };
        args.splice(0..0, ["work-pool", "create"].map(String::from));
        args.extend(["--type", pool_type, "--provision-infra", "--yes"].map(String::from));
        let (marks, aws_mark) = (world.marks().await, world.aws.mark().await);
        let run = world.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(run.code, 1, "{name}: {}", run.all());
        for text in *expected {
            assert!(run.stderr.contains(text), "{name}: expected '{text}' in:\n{}", run.stderr);
        }
        let calls = world.aws.calls().await.len() - aws_mark;
        assert_eq!(calls, 0, "{name}: no AWS call at all");
        world.assert_no_writes_since(marks).await;
        assert!(world.work_pool().await.is_none(), "{name}");
    }
}
