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
        case(
            "reserved pool name",
            &["work-pool", "create", "prefect-pool", "--type", "ecs:push", "--provision-infra", "--yes"],
            &[],
            1,
            &["which Prefect reserves", "fix:"],
        ),
        case(
            "a block name Prefect refuses",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--set", "credentials=My_Block"],
            &[],
            1,
            &["block name 'My_Block'", "--set credentials="],
        ),
        case(
            "unknown type",
            &["work-pool", "create", "{pool}", "--type", "kubernetes:push", "--provision-infra", "--yes"],
            &[],
            1,
            &["work pool type 'kubernetes:push'", "use one of: ecs:push, ecs"],
        ),
        case(
            "type without provisioning",
            &["work-pool", "create", "{pool}", "--type", "process", "--provision-infra", "--yes"],
            &[],
            1,
            &["work pool type 'process'", "cannot provision"],
        ),
        case("contradicting flags", &["plan", "{pool}", "--type", "ecs:push", "--file", "pools.toml"], &[], 1, &["cannot be used with"]),
        case(
            "JSON output for an apply",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--output", "json"],
            &[],
            1,
            &["--output json", "add --dry-run"],
        ),
        case(
            "unknown resource id",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--set", "clustr=x"],
            &[],
            1,
            &["--set clustr=...", "use one of: execution_role"],
        ),
        case("malformed --set", &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--set", "cluster"], &[], 1, &["is not ID=NAME"]),
        case(
            "missing AWS credentials",
            CREATE,
            &[("AWS_ACCESS_KEY_ID", ""), ("AWS_SECRET_ACCESS_KEY", ""), ("AWS_SESSION_TOKEN", "")],
            1,
            &["AWS credentials: ", "no credentials found in chain", "fix: configure credentials"],
        ),
        case("missing AWS region", CREATE, &[("AWS_REGION", "")], 1, &["AWS region: none is configured", "set AWS_REGION"]),
        case("a region that does not exist", CREATE, &[("AWS_REGION", "xx-nowhere-1")], 1, &["HTTP 500", "check the region (AWS_REGION)"]),
        case("no Prefect API configured", CREATE, &[("PREFECT_HOME", "/nonexistent"), ("PREFECT_API_URL", "")], 1, &["Prefect API URL", "PREFECT_API_URL"]),
        case(
            "Prefect server down",
            CREATE,
            &[("PREFECT_API_URL", "http://127.0.0.1:9/api")],
            1,
            &["Prefect API at http://127.0.0.1:9/api: unreachable", "fix: start the server"],
        ),
        case("provision-infra on a missing pool", &["work-pool", "provision-infra", "{pool}", "--yes"], &[], 1, &["does not exist", "pushpool work-pool create"]),
        case("JSON output for a teardown", &["work-pool", "deprovision", "{pool}", "--yes", "--output", "json"], &[], 1, &["--output json", "add --dry-run"]),
        case("teardown of a pool that never existed", &["work-pool", "deprovision", "{pool}", "--type", "ecs:push", "--yes"], &[], 0, &["Nothing to delete"]),
        // Nothing of it exists (no pool, no record, no block): that is said, not asked about.
        case(
            "teardown of a pool that is fully gone, without its type",
            &["work-pool", "deprovision", "{pool}", "--yes"],
            &[],
            0,
            &["Nothing to delete: work pool '", "nothing pushpool built for it is left"],
        ),
        Case {
            name: "teardown with the wrong type",
            setup: Some(|w| {
                Box::pin(async {
                    w.prefect_send(Method::POST, "/work_pools/", json!({"name": w.pool, "type": "ecs"})).await;
                })
            }),
            args: &["work-pool", "deprovision", "{pool}", "--type", "ecs:push", "--yes"],
            env: &[],
            code: 1,
            expect: &["has type 'ecs', not 'ecs:push'", "leave --type out"],
            mid_run: false,
        },
        Case {
            name: "expired AWS token",
            setup: Some(|w| {
                Box::pin(
                    w.aws.set_faults(
                        json!({"GetCallerIdentity": {"status": 403, "code": "ExpiredToken", "message": "The security token included in the request is expired"}}),
                    ),
                )
            }),
            args: CREATE,
            env: &[],
            code: 1,
            expect: &["sts:GetCallerIdentity failed: The security token included in the request is expired", "refresh the AWS credentials"],
            mid_run: false,
        },
        Case {
            name: "pool of another type",
            setup: Some(|w| {
                Box::pin(async {
                    w.prefect_send(Method::POST, "/work_pools/", json!({"name": w.pool, "type": "ecs"})).await;
                })
            }),
            args: CREATE,
            env: &[],
            code: 1,
            expect: &["has type 'ecs', not 'ecs:push'", "fix:"],
            mid_run: false,
        },
        Case {
            name: "malformed profiles.toml",
            setup: Some(|w| Box::pin(async { std::fs::write(w.profiles_path(), "active = [\n[profiles.sandbox\n").unwrap() })),
            args: CREATE,
            env: &[],
            code: 1,
            expect: &["profiles.toml, line ", ": not valid TOML", "left it untouched"],
            mid_run: false,
        },
        Case {
            name: "private address space exhausted",
            setup: Some(|w| {
                Box::pin(async {
                    let aws = w.clients().await;
                    let blocks = (0..=255).map(|b| format!("10.{b}.0.0/16")).chain((16..=31).map(|b| format!("172.{b}.0.0/16"))).chain(["192.168.0.0/16".to_string()]);
                    let creates = blocks.map(|cidr| {
                        let ec2 = aws.ec2.clone();
                        async move {
                            ec2.create_vpc().cidr_block(cidr).send().await.unwrap();
                        }
                    });
                    join_all(creates).await;
                })
            }),
            args: CREATE,
            env: &[],
            code: 1,
            expect: &["every /16 of private address space", "fix: delete an unused VPC"],
            mid_run: false,
        },
        Case {
            name: "VPC quota reached during apply",
            setup: Some(|w| {
                Box::pin(w.aws.set_faults(json!({"CreateVpc": {"status": 400, "code": "VpcLimitExceeded", "message": "The maximum number of VPCs has been reached."}})))
            }),
            args: CREATE,
            env: &[],
            code: 1,
            expect: &["VPC prefect-ecs-vpc: ec2:CreateVpc failed: The maximum number of VPCs has been reached.", "raise the quota", "written before the failure:"],
            mid_run: true,
        },
        Case {
            name: "Prefect server failing mid-run",
            setup: Some(|w| Box::pin(w.prefect.set_faults(json!({"POST /api/work_pools/": {"kind": "5xx"}})))),
            args: CREATE,
            env: &[],
            code: 1,
            expect: &["work pool '", "503", "written before the failure:", "run the same command again"],
            mid_run: true,
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
            args: CREATE,
            env: &[],
            code: 1,
            expect: &[
                "apply to aws_",
                "another pushpool run (pid 4242, started ",
                " s ago, last renewed ",
                "is applying to it; nothing was changed",
                "run again once it is done",
            ],
            mid_run: false,
        },
        Case {
            name: "fewer than three availability zones",
            setup: None,
            args: CREATE,
            env: &[("AWS_REGION", "us-west-1")],
            code: 0,
            expect: &["10.0.0.0/18 in us-west-1a, 10.0.64.0/18 in us-west-1b"],
            mid_run: false,
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
        (
            "an uppercase repository",
            &["{pool}", "--set", "repository=Prefect_Flows"],
            &["ECR repository name 'Prefect_Flows' (resource 'repository')", "contains 'P'", "--set repository=<name>"],
        ),
        (
            "a 65-character user",
            &["{pool}", "--set", "user=uuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuuu"],
            &["IAM user name '", "has 65 characters", "API_CreateUser.html", "--set user=<name>"],
        ),
        ("a user with a space", &["{pool}", "--set", "user=team user"], &["IAM user name 'team user' (resource 'user')", "contains a space"]),
        ("a security group named like an id", &["{pool}", "--set", "security_group=sg-team"], &["security group name 'sg-team'", "starts with 'sg-'"]),
        (
            "a worker named from a pool name with a space",
            &["{pool} a", "--worker"],
            &["(resource 'worker_logs')", "log group name '/prefect/workers/", " a'", "contains a space", "a pool name that makes '/prefect/workers/{pool}' fit"],
        ),
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

// ---- Input that fits no pool type, environment values, files and URLs (issue 20) ----------
//
// One world for the whole table: every case fails before any write, so the cases cannot
// disturb each other; each asserts its own "nothing written" against marks taken just before.

/// A password planted in URLs: it must never be printed.
const URL_PASSWORD: &str = "hunter2-url-password";

/// A case of the input table.
struct Input {
    name: &'static str,
    /// The arguments; `{pool}` is the world's pool name, `{dir}` the directory the case runs in.
    args: &'static [&'static str],
    /// Environment changes; an empty value removes the variable; `{html}` is a server on
    /// 127.0.0.1 that answers every request with a web page, `{prefect}` the world's Prefect API.
    env: &'static [(&'static str, &'static str)],
    /// Files written in the case's directory before the run.
    files: &'static [(&'static str, &'static str)],
    /// Every one of these is in stderr.
    expect: &'static [&'static str],
    /// The input is refused before any call to Prefect or AWS (not only before any write).
    before_any_call: bool,
}

const POOL_ECS: &str = "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\n";
const TEMPLATE_OK: &str = r#"{"job_configuration": {}, "variables": {"properties": {"image": {}}}}"#;

fn input_cases() -> Vec<Input> {
    let early = |name, args, env, files, expect| Input { name, args, env, files, expect, before_any_call: true };
    let late = |name, args, env, files, expect| Input { name, args, env, files, expect, before_any_call: false };
    let none: &'static [(&'static str, &'static str)] = &[];
    vec![
        // Values from the environment that cannot be HTTP headers, and URLs that are not.
        late(
            "AWS access key with a trailing newline",
            CREATE,
            &[("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE\n")],
            none,
            &["AWS_ACCESS_KEY_ID: contains a line break", "trim it"],
        ),
        late("AWS secret key with a CRLF", CREATE, &[("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG\r\n")], none, &["AWS_SECRET_ACCESS_KEY: contains a line break"]),
        late(
            "AWS session token with a control character",
            CREATE,
            &[("AWS_SESSION_TOKEN", "token\u{7}")],
            none,
            &["AWS_SESSION_TOKEN: contains a control character (U+0007)"],
        ),
        late(
            "AWS key newline on a plan",
            &["plan", "{pool}", "--type", "ecs:push"],
            &[("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE\n")],
            none,
            &["AWS_ACCESS_KEY_ID: contains a line break"],
        ),
        late(
            "AWS key newline on a dry-run teardown",
            &["work-pool", "deprovision", "{pool}", "--type", "ecs:push", "--dry-run"],
            &[("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE\n")],
            none,
            &["AWS_ACCESS_KEY_ID: contains a line break"],
        ),
        early("Prefect API key with a trailing newline", CREATE, &[("PREFECT_API_KEY", "pnu_secretkey\n")], none, &["PREFECT_API_KEY: contains a line break"]),
        early(
            "Prefect API key with a tab",
            &["plan", "{pool}", "--type", "ecs:push"],
            &[("PREFECT_API_KEY", "pnu_secret\tkey")],
            none,
            &["PREFECT_API_KEY: contains a tab"],
        ),
        early(
            "Prefect API key newline in the profile",
            CREATE,
            &[("PREFECT_HOME", "{dir}/prefect"), ("PREFECT_API_URL", "")],
            &[("prefect/profiles.toml", "active = \"p\"\n[profiles.p]\nPREFECT_API_URL = \"http://127.0.0.1:9/api\"\nPREFECT_API_KEY = \"pnu_key\\n\"\n")],
            &["PREFECT_API_KEY of profile 'p' in ", "contains a line break"],
        ),
        early(
            "Prefect API URL without a scheme",
            CREATE,
            &[("PREFECT_API_URL", "localhost:4200/api")],
            none,
            &["PREFECT_API_URL: 'localhost:4200/api' is not an http(s) URL with a host", "/api"],
        ),
        early("Prefect API URL that is not a URL", CREATE, &[("PREFECT_API_URL", "not a url")], none, &["PREFECT_API_URL: 'not a url' is not a URL"]),
        early("Prefect API URL with a newline", CREATE, &[("PREFECT_API_URL", "http://127.0.0.1:4200/api\n")], none, &["PREFECT_API_URL: contains a line break"]),
        early(
            "Prefect API URL of another scheme, with a password",
            CREATE,
            &[("PREFECT_API_URL", "ftp://admin:hunter2-url-password@127.0.0.1/api")],
            none,
            &["'ftp://admin:***@127.0.0.1/api' is not an http(s) URL"],
        ),
        late(
            "Prefect API URL with a password, unreachable",
            CREATE,
            &[("PREFECT_API_URL", "http://admin:hunter2-url-password@127.0.0.1:9/api")],
            none,
            &["Prefect API at http://admin:***@127.0.0.1:9/api: unreachable", "start the server"],
        ),
        late("Prefect API URL that answers a web page", CREATE, &[("PREFECT_API_URL", "{html}")], none, &["answered HTML, not JSON", "ends in /api"]),
        late(
            "Prefect API URL that answers a web page, on a plan",
            &["plan", "{pool}", "--type", "ecs:push"],
            &[("PREFECT_API_URL", "{html}")],
            none,
            &["answered HTML, not JSON", "is PREFECT_API_URL the API?"],
        ),
        // Region names checked for their form before any AWS call.
        early(
            "a region that is no region's form",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--region", "us-east-1x"],
            none,
            none,
            &["AWS region 'us-east-1x' (from --region)", "is not a region name", "describe-regions"],
        ),
        early("a region with a space, on a plan", &["plan", "{pool}", "--type", "ecs", "--region", "eu west 1"], none, none, &["AWS region 'eu west 1' (from --region)"]),
        early(
            "a region for a teardown",
            &["work-pool", "deprovision", "{pool}", "--type", "ecs:push", "--dry-run", "--region", "EU-WEST-1"],
            none,
            none,
            &["AWS region 'EU-WEST-1' (from --region)"],
        ),
        early(
            "a region for the ECR of a Modal pool",
            &["plan", "{pool}", "--type", "modal:push", "--image-registry", "ecr", "--region", "us_east_1"],
            none,
            none,
            &["AWS region 'us_east_1' (from --region)"],
        ),
        late("AWS_REGION in words", CREATE, &[("AWS_REGION", "US EAST")], none, &["AWS region 'US EAST' (from AWS_REGION)", "correct AWS_REGION"]),
        late("AWS_REGION with a newline", CREATE, &[("AWS_REGION", "us-east-1\n")], none, &["AWS region 'us-east-1\\n' (from AWS_REGION)"]),
        late("AWS_DEFAULT_REGION mistyped", CREATE, &[("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "us-east")], none, &["AWS region 'us-east' (from AWS_DEFAULT_REGION)"]),
        // Place flags that mean nothing for the pool type.
        early(
            "--subscription on ecs:push",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--subscription", "sub-1"],
            none,
            none,
            &["--subscription sub-1: means nothing for ecs:push pools", "leave --subscription out; it serves azure-container-instance:push"],
        ),
        early(
            "--project on ecs:push",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--provision-infra", "--yes", "--project", "my-project"],
            none,
            none,
            &["--project my-project: means nothing for ecs:push pools", "cloud-run:push"],
        ),
        early("--subscription on ecs", &["plan", "{pool}", "--type", "ecs", "--subscription", "s"], none, none, &["means nothing for ecs pools"]),
        early(
            "--region on modal:push",
            &["plan", "{pool}", "--type", "modal:push", "--region", "us-east-1"],
            none,
            none,
            &["--region us-east-1: means nothing for modal:push pools", "modal:push with --image-registry ecr"],
        ),
        early(
            "--location on modal:push",
            &["plan", "{pool}", "--type", "modal:push", "--location", "eastus"],
            none,
            none,
            &["--region eastus: means nothing for modal:push pools"],
        ),
        early(
            "--region on coiled:push",
            &["work-pool", "create", "{pool}", "--type", "coiled:push", "--provision-infra", "--yes", "--region", "us-east-1"],
            none,
            none,
            &["means nothing for coiled:push pools", "ecs:push"],
        ),
        early(
            "--project on coiled:push",
            &["plan", "{pool}", "--type", "coiled:push", "--project", "p-123456"],
            none,
            none,
            &["--project p-123456: means nothing for coiled:push pools"],
        ),
        early(
            "--subscription on cloud-run:push",
            &["plan", "{pool}", "--type", "cloud-run:push", "--subscription", "s"],
            none,
            none,
            &["means nothing for cloud-run:push pools", "azure-container-instance"],
        ),
        early(
            "--subscription on cloud-run-v2",
            &["plan", "{pool}", "--type", "cloud-run-v2", "--subscription", "s"],
            none,
            none,
            &["means nothing for cloud-run-v2 pools"],
        ),
        early(
            "--project on azure-container-instance:push",
            &["plan", "{pool}", "--type", "azure-container-instance:push", "--project", "p-123456"],
            none,
            none,
            &["means nothing for azure-container-instance:push pools", "cloud-run-v2:push"],
        ),
        early(
            "--project on modal:push with ECR",
            &["plan", "{pool}", "--type", "modal:push", "--image-registry", "ecr", "--project", "p-123456"],
            none,
            none,
            &["means nothing for modal:push pools"],
        ),
        early(
            "--subscription on a teardown of ecs:push",
            &["work-pool", "deprovision", "{pool}", "--type", "ecs:push", "--dry-run", "--subscription", "s"],
            none,
            none,
            &["--subscription s: means nothing for ecs:push pools"],
        ),
        // Add-ons and their settings.
        late("--worker on ecs:push", &["plan", "{pool}", "--type", "ecs:push", "--worker"], none, none, &["--worker: is not available for ecs:push pools"]),
        late(
            "--image-registry ecr on ecs:push",
            &["plan", "{pool}", "--type", "ecs:push", "--image-registry", "ecr"],
            none,
            none,
            &["--image-registry ecr: is not available for ecs:push pools"],
        ),
        late(
            "--image-registry of an unknown kind",
            &["plan", "{pool}", "--type", "modal:push", "--image-registry", "gcr"],
            none,
            none,
            &["--image-registry gcr: is not available for modal:push pools", "image-registry=ecr"],
        ),
        late(
            "--worker-image without --worker",
            &["plan", "{pool}", "--type", "ecs", "--worker-image", "img:1"],
            none,
            none,
            &["--worker-image: is a setting of --worker", "add --worker"],
        ),
        early(
            "--worker-api-url that is not a URL",
            &["plan", "{pool}", "--type", "ecs", "--worker", "--worker-api-url", "not-a-url"],
            none,
            none,
            &["--worker-api-url 'not-a-url': is not an http(s) URL with a host", "e.g. --worker-api-url https://"],
        ),
        early(
            "--worker-api-url of another scheme",
            &["work-pool", "create", "{pool}", "--type", "ecs", "--provision-infra", "--yes", "--worker", "--worker-api-url", "ftp://prefect/api"],
            none,
            none,
            &["--worker-api-url 'ftp://prefect/api'"],
        ),
        early(
            "--worker-api-url without a host",
            &["plan", "{pool}", "--type", "ecs", "--worker", "--worker-api-url", "http://"],
            none,
            none,
            &["--worker-api-url 'http://'"],
        ),
        // Saved plans.
        early("a plan file that is missing", &["apply", "missing.json"], none, none, &["plan file missing.json: No such file", "fix: check the path"]),
        early(
            "a plan file that is not JSON",
            &["apply", "plan.json"],
            none,
            &[("plan.json", "<html>")],
            &["plan file plan.json: not JSON", "pushpool plan ... --out FILE"],
        ),
        early("a plan file that is a directory", &["apply", "."], none, none, &["plan file .: ", "fix:"]),
        early(
            "a plan file of another format",
            &["apply", "plan.json"],
            none,
            &[("plan.json", r#"{"format_version": 1}"#)],
            &["has format version 1", "make the plan again"],
        ),
        early(
            "a plan file that is not a plan",
            &["apply", "plan.json"],
            none,
            &[("plan.json", r#"{"format_version": 2, "created_at": 3}"#)],
            &["not a pushpool plan", "make the plan again"],
        ),
        // Pools files.
        early("a pools file that is missing", &["plan", "--file", "missing.toml"], none, none, &["pools file missing.toml: No such file", "fix: check the path"]),
        early("a pools file that is a directory", &["apply", "--file", ".", "--yes"], none, none, &["pools file .: ", "fix:"]),
        early(
            "a pools file with a syntax error",
            &["plan", "--file", "pools.toml"],
            none,
            &[("pools.toml", "[[pool]]\nname = \"a\"\ntype = ecs:push\n")],
            &["pools file pools.toml, line 3, column 8: string values must be quoted", "fix: see the pools file format"],
        ),
        early(
            "a pools file pool without a type",
            &["plan", "--file", "pools.toml"],
            none,
            &[("pools.toml", "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\n\n[[pool]]\nname = \"b\"\n")],
            &["pool 'b' (#2), line 5", "missing field `type`"],
        ),
        early(
            "a pools file pool without a name",
            &["apply", "--file", "pools.toml", "--yes"],
            none,
            &[("pools.toml", "[[pool]]\ntype = \"ecs:push\"\n")],
            &["pool #1, line 1", "missing field `name`"],
        ),
        early(
            "a pools file with an unknown key",
            &["plan", "--file", "pools.toml"],
            none,
            &[("pools.toml", "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\nclustr = \"x\"\n")],
            &["pool 'a' (#1), line 4, column 1", "unknown field `clustr`"],
        ),
        early("a pools file with no pool", &["plan", "--file", "pools.toml"], none, &[("pools.toml", "# nothing yet\n")], &["declares no pool", "add a [[pool]] table"]),
        early(
            "a pools file subscription on ecs:push",
            &["plan", "--file", "pools.toml"],
            none,
            &[("pools.toml", "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\n\n[[pool]]\nname = \"b\"\ntype = \"ecs:push\"\nsubscription = \"s\"\n")],
            &["pools file pools.toml, pool 'b' (#2): `subscription` s: means nothing for ecs:push pools", "leave `subscription` out"],
        ),
        early(
            "a pools file project on modal:push",
            &["apply", "--file", "pools.toml", "--yes"],
            none,
            &[("pools.toml", "[[pool]]\nname = \"m\"\ntype = \"modal:push\"\nproject = \"p-123456\"\n")],
            &["pool 'm' (#1): `project` p-123456: means nothing for modal:push pools"],
        ),
        early(
            "a pools file region of no form",
            &["plan", "--file", "pools.toml"],
            none,
            &[("pools.toml", "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\nregion = \"Frankfurt\"\n")],
            &["pool 'a' (#1): AWS region 'Frankfurt' (from `region`)"],
        ),
        early(
            "a pools file worker URL that is not one",
            &["plan", "--file", "pools.toml"],
            none,
            &[("pools.toml", "[[pool]]\nname = \"w\"\ntype = \"ecs\"\nworker = true\nworker_api_url = \"prefect:4200\"\n")],
            &["pool 'w' (#1): `worker_api_url` 'prefect:4200': is not an http(s) URL"],
        ),
        early(
            "a pools file template that is missing",
            &["plan", "--file", "pools.toml"],
            none,
            &[("pools.toml", "[[pool]]\nname = \"m\"\ntype = \"modal:push\"\nbase_job_template = \"nope.json\"\n")],
            &["pool 'm' (#1): base job template ", "nope.json", "check the path"],
        ),
        early(
            "a pools file listing a pool twice",
            &["plan", "--file", "pools.toml"],
            none,
            &[("pools.toml", "[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\n\n[[pool]]\nname = \"a\"\ntype = \"ecs:push\"\n")],
            &["work pool 'a': is listed twice", "list each pool once"],
        ),
        // Base job templates.
        early(
            "a base job template that is missing",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--base-job-template", "nope.json"],
            none,
            none,
            &["base job template nope.json: No such file", "check the path"],
        ),
        early(
            "a base job template that is not JSON",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--base-job-template", "t.json"],
            none,
            &[("t.json", "{")],
            &["base job template t.json: not JSON", "get-default-base-job-template"],
        ),
        early(
            "a base job template without its sections",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--base-job-template", "t.json"],
            none,
            &[("t.json", "{}")],
            &["has no `job_configuration`", "get-default-base-job-template"],
        ),
        // --out, checked before anything is read.
        early(
            "--out in a missing directory",
            &["plan", "{pool}", "--type", "ecs:push", "--out", "no/such/dir/plan.json"],
            none,
            none,
            &["--out no/such/dir/plan.json: its directory no/such/dir", "mkdir -p no/such/dir"],
        ),
        early("--out that is a directory", &["plan", "{pool}", "--type", "ecs:push", "--out", "."], none, none, &["--out .: is a directory", "--out ./plan.json"]),
        early(
            "--out checked before the pools file",
            &["plan", "--file", "pools.toml", "--out", "missing/plan.json"],
            none,
            &[("pools.toml", POOL_ECS)],
            &["--out missing/plan.json: its directory missing"],
        ),
        early(
            "--out checked before the template",
            &["work-pool", "create", "{pool}", "--type", "ecs:push", "--base-job-template", "t.json", "--out", "gone/plan.json", "--dry-run"],
            none,
            &[("t.json", TEMPLATE_OK)],
            &["--out gone/plan.json"],
        ),
        early("--out of a provision-infra", &["work-pool", "provision-infra", "{pool}", "--dry-run", "--out", "gone/plan.json"], none, none, &["--out gone/plan.json"]),
    ]
}

/// A server on 127.0.0.1 that answers every request with a web page, as a Prefect URL without
/// `/api` can (a reverse proxy's front page, the UI). On a thread of its own: the test's
/// runtime is blocked while pushpool runs.
fn web_page_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut socket in listener.incoming().flatten() {
            let _ = socket.read(&mut [0u8; 8192]);
            let body = "<!doctype html><html><body>Prefect</body></html>";
            let reply = format!("HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = socket.write_all(reply.as_bytes());
        }
    });
    url
}

#[tokio::test]
async fn input_that_no_cloud_would_take_is_refused_first() {
    let world = World::new("input").await;
    let html = web_page_server();
    let table = input_cases();
    assert!(table.len() + cases().len() >= 80, "the bad-input suite has {} cases", table.len() + cases().len());
    for case in &table {
        let dir = tempfile::tempdir_in(world.home.path()).unwrap();
        for (path, text) in case.files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let substitute = |text: &str| text.replace("{pool}", &world.pool).replace("{dir}", &dir.path().display().to_string()).replace("{html}", &html);
        let args: Vec<String> = case.args.iter().map(|a| substitute(a)).collect();
        let mut command = world.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        command.current_dir(dir.path());
        for (key, value) in case.env {
            match value.is_empty() {
                true => command.env_remove(key),
                false => command.env(key, substitute(value)),
            };
        }
        let profile_before = std::fs::read(world.profiles_path()).unwrap();
        let calls = (world.aws.mark().await, world.prefect.mark().await);
        let run = world.run_command(&mut command);
        let name = case.name;
        assert!(run.code != 101 && !run.stderr.contains("panicked"), "{name}: a panic\n{}", run.all());
        assert_eq!(run.code, 1, "{name}: exit code\n{}", run.all());
        for expected in case.expect {
            assert!(run.stderr.contains(expected), "{name}: expected '{expected}' in:\n{}", run.stderr);
        }
        assert!(run.stderr.contains("error: ") && run.stderr.contains("\n  fix: "), "{name}: an error with a fix line:\n{}", run.stderr);
        assert!(!run.all().contains(URL_PASSWORD), "{name}: a URL's password was printed:\n{}", run.all());
        world.assert_no_writes_since(calls).await;
        if case.before_any_call {
            assert_eq!((world.aws.mark().await, world.prefect.mark().await), calls, "{name}: refused before any call");
        }
        assert_eq!(std::fs::read(world.profiles_path()).unwrap(), profile_before, "{name}: the profile is untouched");
        let written: Vec<_> = support::files_under(dir.path()).into_iter().filter(|f| !case.files.iter().any(|(p, _)| dir.path().join(p) == *f)).collect();
        assert!(written.is_empty(), "{name}: wrote {written:?}");
        assert!(world.work_pool().await.is_none(), "{name}: no pool created");
    }
    println!("input refused first: {} cases", table.len());
}

/// A plan made in the future can never grow older than --max-age: it is refused.
#[tokio::test]
async fn a_saved_plan_from_the_future_is_refused() {
    let world = World::new("future").await;
    let plan = world.home.path().join("plan.json");
    let run = world.run(&["plan", &world.pool, "--type", "ecs:push", "--out", plan.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all());
    let mut document: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let future = std::time::SystemTime::now() + std::time::Duration::from_secs(30 * 86_400);
    document["created_at"] = json!(humantime::format_rfc3339_seconds(future).to_string());
    std::fs::write(&plan, document.to_string()).unwrap();
    let marks = world.marks().await;
    let run = world.run(&["apply", plan.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("in the future (created_at "), "{}", run.stderr);
    assert!(run.stderr.contains("fix: check this machine's clock"), "{}", run.stderr);
    world.assert_no_writes_since(marks).await;
    assert!(world.work_pool().await.is_none());
}

/// User-info in PREFECT_API_URL is redacted in the plan header, JSON, Markdown and plan files.
#[tokio::test]
async fn a_password_in_the_prefect_url_is_never_shown() {
    let world = World::new("userinfo").await;
    let url = world.prefect.url().replace("http://", &format!("http://admin:{URL_PASSWORD}@")) + "/api";
    let plan = world.home.path().join("plan.json");
    for output in ["text", "json", "markdown"] {
        let mut command = world.command(&["plan", &world.pool, "--type", "ecs:push", "--output", output, "--out", plan.to_str().unwrap()]);
        command.env("PREFECT_API_URL", &url);
        let run = world.run_command(&mut command);
        assert_eq!(run.code, 0, "{output}: {}", run.all());
        assert!(run.stdout.contains("admin:***@127.0.0.1"), "{output}: the redacted URL is shown:\n{}", run.stdout);
        assert!(!run.all().contains(URL_PASSWORD), "{output}: {}", run.all());
        let saved = std::fs::read_to_string(&plan).unwrap();
        assert!(saved.contains("admin:***@127.0.0.1") && !saved.contains(URL_PASSWORD), "{output}: plan file {saved}");
    }
}

/// Every command with its stdout closed by the reader (`pushpool ... | head -0`): no panic,
/// and the run ends quietly with status 0, as ripgrep and uv do.
#[tokio::test]
async fn a_closed_stdout_ends_every_command_quietly() {
    let world = World::new("pipe").await;
    std::fs::write(world.home.path().join("pools.toml"), format!("[[pool]]\nname = \"{}\"\ntype = \"ecs:push\"\n", world.pool)).unwrap();
    let pool = world.pool.as_str();
    let commands: Vec<Vec<&str>> = vec![
        vec!["plan", pool, "--type", "ecs:push"],
        vec!["plan", pool, "--type", "ecs:push", "--output", "json"],
        vec!["plan", pool, "--type", "ecs:push", "--output", "markdown"],
        vec!["plan", "--file", "pools.toml"],
        vec!["work-pool", "create", pool, "--type", "ecs:push", "--provision-infra", "--dry-run"],
        vec!["work-pool", "deprovision", pool, "--type", "ecs:push", "--dry-run"],
        vec!["work-pool", "deprovision", pool, "--yes"],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
        vec!["--help"],
        vec!["work-pool", "create", "--help"],
        vec!["--version"],
    ];
    for args in commands {
        let mut command = world.command(&args);
        command.current_dir(world.home.path()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("error:"), "{args:?}: a closed stdout is not an error: {stderr}");
    }
    assert!(world.work_pool().await.is_none(), "nothing was created");
}

/// A pools file of 10,000 pools with one bad entry is refused at once, before any call: each
/// kind of bad entry (a type nothing provisions, a flag the type does not take, a name Prefect
/// refuses, a pool listed twice).
#[tokio::test]
async fn ten_thousand_pools_with_one_bad_entry_are_refused_at_once() {
    let world = World::new("large").await;
    let good: String = (0..10_000).map(|i| format!("[[pool]]\nname = \"p{i}\"\ntype = \"ecs:push\"\nregion = \"eu-west-1\"\n\n")).collect();
    let bad_entries = [
        ("[[pool]]\nname = \"k\"\ntype = \"kubernetes:push\"\n", "pool 'k' (#10001): work pool type 'kubernetes:push'"),
        ("[[pool]]\nname = \"s\"\ntype = \"ecs:push\"\nsubscription = \"x\"\n", "pool 's' (#10001): `subscription` x"),
        ("[[pool]]\nname = \"prefect-x\"\ntype = \"ecs:push\"\n", "work pool name 'prefect-x'"),
        ("[[pool]]\nname = \"p7\"\ntype = \"ecs:push\"\n", "work pool 'p7': is listed twice"),
    ];
    for (bad, expected) in bad_entries {
        std::fs::write(world.home.path().join("pools.toml"), format!("{good}{bad}")).unwrap();
        let marks = (world.aws.mark().await, world.prefect.mark().await);
        let mut command = world.command(&["plan", "--file", "pools.toml"]);
        command.current_dir(world.home.path());
        let started = std::time::Instant::now();
        let output = command.output().unwrap();
        let took = started.elapsed();
        let run = support::Run::from(output);
        world.assert_no_secret_leaked(&run);
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(run.stderr.contains(expected) && run.stderr.contains("fix: "), "{expected}: {}", run.stderr);
        assert!(took < std::time::Duration::from_secs(1), "{expected}: took {took:?}");
        assert_eq!((world.aws.mark().await, world.prefect.mark().await), marks, "{expected}: no call");
    }
}
