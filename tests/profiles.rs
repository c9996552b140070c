//! AWS profiles per pool: a pools file whose pools live in two accounts, each reached through
//! its own AWS CLI profile (`role_arn` + `source_profile`, and `credential_process`), while the
//! shell's own keys are for a third account. Against moto, which serves other accounts through
//! `sts:AssumeRole`.

mod support;

use std::path::PathBuf;

use support::{Account, World, clients, fresh_account};

/// A world whose HOME has an AWS config file with profile `team-a` (role_arn into `a` with
/// source_profile `base`, whose keys are in the credentials file) and profile `team-b`
/// (credential_process printing `b`'s credentials), and a pools file with pools `-a` and `-c`
/// (its own user and policy, the rest shared with `-a`) in `a` and pool `-b` in `b`.
struct Fleet {
    world: World,
    a: Account,
    b: Account,
    pools: PathBuf,
}

impl Fleet {
    async fn new() -> Self {
        let world = World::new("fleet").await;
        let (a, b) = (fresh_account(&world.moto).await, fresh_account(&world.moto).await);
        let aws = world.home.path().join(".aws");
        std::fs::create_dir_all(&aws).unwrap();
        std::fs::write(aws.join("credentials"), "[base]\naws_access_key_id = base-key\naws_secret_access_key = base-secret-key\n").unwrap();
        let process = serde_json::json!({
            "Version": 1,
            "AccessKeyId": b.access_key,
            "SecretAccessKey": b.secret_key,
            "SessionToken": b.session_token,
        });
        std::fs::write(aws.join("team-b.json"), process.to_string()).unwrap();
        let config = format!(
            "[profile team-a]\nrole_arn = arn:aws:iam::{}:role/platform\nsource_profile = base\nregion = us-east-1\n\n[profile team-b]\ncredential_process = cat {}\n",
            a.id,
            aws.join("team-b.json").display()
        );
        std::fs::write(aws.join("config"), config).unwrap();
        let pools = world.home.path().join("pools.toml");
        let text = format!(
            "[[pool]]\nname = \"{0}-a\"\ntype = \"ecs:push\"\nprofile = \"team-a\"\n\n[[pool]]\nname = \"{0}-b\"\ntype = \"ecs:push\"\nprofile = \"team-b\"\nregion = \"us-east-1\"\n\n\
             [[pool]]\nname = \"{0}-c\"\ntype = \"ecs:push\"\nprofile = \"team-a\"\nset = {{ user = \"{0}-c\", policy = \"{0}-c\" }}\n",
            world.pool
        );
        std::fs::write(&pools, text).unwrap();
        Self { world, a, b, pools }
    }

    fn run(&self, args: &[&str]) -> support::Run {
        let run = self.world.run(args);
        let secrets = [self.a.secret_key.as_str(), self.b.secret_key.as_str(), "base-secret-key"];
        run.assert_no_secret(&secrets);
        run
    }

    fn pools(&self) -> &str {
        self.pools.to_str().unwrap()
    }

    /// The active ECS clusters of `account`.
    async fn clusters_of(&self, account: &Account) -> Vec<String> {
        let ecs = clients(&self.world.moto, account).await.ecs;
        let arns = ecs.list_clusters().send().await.unwrap().cluster_arns().to_vec();
        if arns.is_empty() {
            return Vec::new();
        }
        let described = ecs.describe_clusters().set_clusters(Some(arns)).send().await.unwrap();
        let active = described.clusters().iter().filter(|c| c.status() == Some("ACTIVE"));
        active.filter_map(|c| c.cluster_arn().map(str::to_owned)).collect()
    }

    /// The IAM users of `account`.
    async fn users_of(&self, account: &Account) -> Vec<String> {
        let users = clients(&self.world.moto, account).await.iam.list_users().send().await.unwrap();
        let mut names: Vec<String> = users.users().iter().map(|u| u.user_name().to_owned()).collect();
        names.sort();
        names
    }
}

#[tokio::test]
async fn a_pools_file_spans_two_accounts_through_profiles_and_later_runs_keep_each_pools_profile() {
    let fleet = Fleet::new().await;
    let world = &fleet.world;
    let (pool_a, pool_b) = (format!("{}-a", world.pool), format!("{}-b", world.pool));

    let plan = fleet.run(&["plan", "--file", fleet.pools()]);
    plan.ok();
    for (account, profile) in [(&fleet.a.id, "team-a"), (&fleet.b.id, "team-b")] {
        let named = format!("AWS account {account} (profile '{profile}'), region us-east-1");
        assert!(plan.stdout.contains(&named), "the plan names {named}:\n{}", plan.stdout);
    }
    assert!(!plan.stdout.contains(&world.account.id), "the shell's own account is not used:\n{}", plan.stdout);

    // Machine-readable plans stay clean: stdout is one JSON document, naming each profile.
    let json = fleet.run(&["plan", "--file", fleet.pools(), "--output", "json"]);
    let document: serde_json::Value = serde_json::from_str(&json.ok().stdout).expect("stdout is only JSON");
    let mut profiles: Vec<&str> = document["targets"].as_array().unwrap().iter().filter_map(|t| t["profile"].as_str()).collect();
    profiles.sort_unstable();
    assert_eq!(profiles, ["team-a", "team-b"]);
    world.assert_matches_schema(&json.stdout);
    let markdown = fleet.run(&["plan", "--file", fleet.pools(), "--output", "markdown"]);
    for account in [&fleet.a.id, &fleet.b.id] {
        for section in [format!("#### `{account}/us-east-1`"), format!("#### `{account}` (all regions)")] {
            assert!(markdown.ok().stdout.contains(&section), "a section {section}:\n{}", markdown.stdout);
        }
    }

    let applied = fleet.run(&["apply", "--file", fleet.pools(), "--yes"]);
    applied.ok();
    // Progress by pool, not by resource.
    for pool in [&pool_a, &pool_b, &format!("{}-c", world.pool)] {
        assert!(applied.stderr.contains(&format!("✓ work pool '{pool}'")), "{}", applied.stderr);
    }
    assert!(applied.stderr.contains("(3/3 pools done)"), "{}", applied.stderr);
    assert!(!applied.stderr.contains("✓ ECS cluster"), "no line per resource:\n{}", applied.stderr);
    // One resource name (prefect-ecs-cluster) in two accounts is two resources, each in its pool's account.
    assert_eq!(fleet.clusters_of(&fleet.a).await, [format!("arn:aws:ecs:us-east-1:{}:cluster/prefect-ecs-cluster", fleet.a.id)], "a and c share one");
    assert_eq!(fleet.clusters_of(&fleet.b).await, [format!("arn:aws:ecs:us-east-1:{}:cluster/prefect-ecs-cluster", fleet.b.id)]);
    assert!(fleet.clusters_of(&world.account).await.is_empty(), "nothing in the shell's account");
    let pool_c = format!("{}-c", world.pool);
    assert_eq!(fleet.users_of(&fleet.a).await, [pool_c.clone(), "prefect-ecs-user".to_owned()]);
    assert_eq!(fleet.users_of(&fleet.b).await, ["prefect-ecs-user"], "IAM is account-wide: b has a user of that name too");

    let marks = world.marks().await;
    let again = fleet.run(&["apply", "--file", fleet.pools(), "--yes"]);
    again.ok();
    assert!(again.stdout.contains("Nothing to change"), "{}", again.stdout);
    // Assuming a profile's role mints session credentials and changes nothing: not a write.
    let aws: Vec<String> = world.aws.writes_since(marks.0).await.into_iter().filter(|w| w != "sts AssumeRole").collect();
    let prefect = world.prefect.writes_since(marks.1).await;
    assert!(aws.is_empty() && prefect.is_empty(), "the re-run wrote AWS {aws:?} and Prefect {prefect:?}");
    // Each profile and region is connected once, however many pools use it (a and c share one).
    let calls = world.aws.calls().await;
    let identities = calls[marks.0..].iter().filter(|c| c.service == "sts" && c.action == "GetCallerIdentity").count();
    assert_eq!(identities, 2, "one identity check per profile");

    // The record keeps each pool's profile: a profile of another account is refused...
    let refused = fleet.run(&["work-pool", "provision-infra", &pool_a, "--profile", "team-b", "--dry-run"]);
    assert_eq!(refused.code, 1, "{}", refused.all());
    let expected = format!("AWS credentials of profile 'team-b': are for account {}, but work pool '{pool_a}' lives in account {}", fleet.b.id, fleet.a.id);
    assert!(refused.stderr.contains(&expected), "{}", refused.stderr);
    // ...and a teardown without the flag works in the recorded one, not the shell's account:
    // a's own user goes, what c shares with it stays, b is untouched.
    fleet.run(&["work-pool", "deprovision", &pool_a, "--yes"]).ok();
    assert_eq!(fleet.users_of(&fleet.a).await, [pool_c.as_str()]);
    assert_eq!(fleet.clusters_of(&fleet.a).await.len(), 1, "c still uses the cluster");
    assert_eq!(fleet.users_of(&fleet.b).await, ["prefect-ecs-user"]);
    fleet.run(&["work-pool", "deprovision", &pool_b, "--yes"]).ok();
    assert!(fleet.clusters_of(&fleet.b).await.is_empty() && fleet.users_of(&fleet.b).await.is_empty());
}

#[tokio::test]
async fn a_profile_that_does_not_exist_is_named_with_the_files_read_and_the_fix() {
    let fleet = Fleet::new().await;
    let run = fleet.run(&["plan", &fleet.world.pool, "--type", "ecs:push", "--profile", "team-c"]);
    assert_eq!(run.code, 1, "{}", run.all());
    let config = fleet.world.home.path().join(".aws/config");
    assert!(run.stderr.contains("AWS profile 'team-c': is not defined in ~/.aws/config and ~/.aws/credentials; they define base, team-a, team-b"), "{}", run.stderr);
    assert!(run.stderr.contains("aws configure --profile team-c"), "{}", run.stderr);
    // With AWS_CONFIG_FILE, that file is the one named.
    let mut command = fleet.world.command(&["plan", &fleet.world.pool, "--type", "ecs:push", "--profile", "team-c"]);
    command.env("AWS_CONFIG_FILE", &config);
    let run = fleet.world.run_command(&mut command);
    assert!(run.stderr.contains(&format!("is not defined in {} and ~/.aws/credentials", config.display())), "{}", run.stderr);
    // A profile whose credentials cannot be had is named, with the AWS CLI's own check.
    let config = std::fs::read_to_string(&config).unwrap() + "\n[profile broken]\ncredential_process = false\n";
    std::fs::write(fleet.world.home.path().join(".aws/config"), config).unwrap();
    let run = fleet.run(&["plan", &fleet.world.pool, "--type", "ecs:push", "--profile", "broken"]);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stderr.contains("error: AWS credentials of profile 'broken': "), "{}", run.stderr);
    assert!(run.stderr.contains("aws sts get-caller-identity --profile broken"), "{}", run.stderr);
    let refused = fleet.run(&["plan", "m", "--type", "modal:push", "--profile", "team-a"]);
    assert!(refused.stderr.contains("--profile team-a: means nothing for modal:push pools"), "{}", refused.stderr);
}
