//! Azure Container Instances pools against the sandbox's Azure fake and the real Prefect server.
//!
//! What these prove: the wire contract (every ARM request and answer checked against the
//! official examples, every Graph body against the Graph schema; each test ends with no
//! contract violation) and pushpool's handling of Azure's documented semantics as the fake
//! models them (201 vs 200, long-running operations, RoleAssignmentExists, PrincipalNotFound
//! after a new principal, throttling with Retry-After, one token per audience). Not the live cloud.

mod support;

use serde_json::{Value, json};
use support::World;
use support::azure::{AzureCall, AzureWorld};

const CREATE: &[&str] = &["work-pool", "create", "{pool}", "--type", "azure-container-instance:push", "--provision-infra", "--yes"];

/// What the subscription and tenant hold, without the ids that differ between runs.
async fn inventory(azure: &AzureWorld) -> Value {
    let subscription = azure.subscription.state().await;
    let tenant = azure.tenant.state().await;
    let groups: Vec<Value> = subscription["resourceGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| json!({"name": g["name"], "tags": g["tags"], "registries": g["registries"].as_array().map_or(0, Vec::len), "identities": g["identities"].as_array().map_or(0, Vec::len)}))
        .collect();
    // Sorted: concurrent branches create the two assignments in either order.
    let mut roles: Vec<String> = subscription["roleAssignments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["roleDefinitionId"].as_str().unwrap_or_default().rsplit('/').next().unwrap().to_owned())
        .collect();
    roles.sort();
    json!({"groups": groups, "roles": roles, "tenant": tenant_summary(&tenant)})
}

fn tenant_summary(tenant: &Value) -> Value {
    let apps: Vec<Value> = tenant["applications"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| json!({"name": a["displayName"], "secrets": a["passwordCredentials"].as_array().map_or(0, Vec::len)}))
        .collect();
    json!({"applications": apps, "service_principals": tenant["servicePrincipals"].as_array().map_or(0, Vec::len)})
}

#[tokio::test]
async fn a_fresh_subscription_gets_everything_in_the_default_one_and_a_rerun_writes_nothing() {
    let world = World::new("aci").await;
    let azure = AzureWorld::new("aci").await;
    let start = inventory(&azure).await;
    let run = world.run_azure(&azure, &world.args(CREATE));
    println!("{}", run.all());
    run.ok();
    azure.assert_others_untouched().await;

    let subscription = azure.subscription.state().await;
    let group = &subscription["resourceGroups"][0];
    assert_eq!(group["name"], "prefect-aci-push-pool-rg");
    assert_eq!(group["tags"]["managed-by"], "pushpool");
    assert_eq!(group["tags"]["prefect.work-pool"], world.pool.as_str());
    let registry = &group["registries"][0];
    assert!(registry["name"].as_str().unwrap().starts_with("prefect"));
    assert_eq!(registry["tags"]["prefect.work-pool"], world.pool.as_str());
    let identity = &group["identities"][0];
    assert_eq!(identity["name"], "prefect-acr-identity");
    let roles: Vec<&str> =
        subscription["roleAssignments"].as_array().unwrap().iter().map(|a| a["roleDefinitionId"].as_str().unwrap().rsplit('/').next().unwrap()).collect();
    assert!(roles.contains(&"b24988ac-6180-42a0-ab88-20f7382dd24c") && roles.contains(&"7f951dda-4ed3-4680-a7ca-43fe172d538d"), "{roles:?}");

    // The pool names the block, the group, the subscription, the registry and the identity.
    let defaults = world.job_variable_defaults().await;
    let block = world.azure_block().await.expect("the block exists");
    assert_eq!(defaults["aci_credentials"]["$ref"]["block_document_id"], block["id"]);
    assert_eq!(defaults["resource_group_name"], "prefect-aci-push-pool-rg");
    assert_eq!(defaults["subscription_id"], azure.subscription.id.as_str());
    assert_eq!(defaults["image_registry"], json!({"registry_url": registry["loginServer"], "identity": identity["id"]}));
    assert_eq!(defaults["identities"], json!([identity["id"]]));

    // Prefect's own client (prefect-azure) loads the block, and its secret logs in.
    let loaded = world.load_aci_credentials_with_prefect(&format!("{}-push-pool-credentials", world.pool), Some((&azure.fake, &azure.tenant)));
    assert_eq!(loaded["tenant_id"], azure.tenant.id.as_str());
    assert_eq!(loaded["login_status"], 200, "{loaded}");
    let profiles = std::fs::read_to_string(world.profiles_path()).unwrap();
    assert!(profiles.contains(registry["loginServer"].as_str().unwrap()), "{profiles}");

    let fresh = azure.calls_since(&support::azure::AzureMarks::default()).await;
    println!("fresh run: {} Azure calls, {} writes", fresh.len(), fresh.iter().filter(|c| c.write).count());
    // A re-run writes nothing, in Azure or in Prefect.
    let (marks, prefect) = (azure.marks().await, world.marks().await);
    let again = world.run_azure(&azure, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    again.ok();
    assert!(again.all().contains("Nothing to change"), "{}", again.all());
    assert_eq!(azure.writes_since(&marks).await, Vec::<String>::new());
    world.assert_no_writes_since(prefect).await;
    println!("re-run calls: {:?}", azure.calls_since(&marks).await.iter().map(|c| c.name()).collect::<Vec<_>>());

    // The teardown takes everything back to the start.
    let down = world.run_azure(&azure, &["work-pool", "deprovision", &world.pool, "--yes"]);
    println!("{}", down.all());
    down.ok();
    assert_eq!(inventory(&azure).await, start);
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn existing_group_app_and_identity_are_used_as_they_are_and_a_teardown_keeps_them() {
    let world = World::new("acx").await;
    let azure = AzureWorld::new("acx").await;
    azure.subscription.seed_resource_group("prefect-aci-push-pool-rg", "westeurope", &[("team", "data")]).await;
    azure.subscription.seed_identity("prefect-aci-push-pool-rg", "prefect-acr-identity", &[]).await;
    let app = azure.tenant.seed_application("prefect-aci-push-pool-app", &[], 1, true).await;
    world.run_azure(&azure, &world.args(CREATE)).ok();
    let writes = azure.writes_since(&support::azure::AzureMarks::default()).await;
    assert!(!writes.iter().any(|w| w.contains("resourceGroups/write") || w.contains("userAssignedIdentities/write") || w.contains("applications.create")), "{writes:?}");
    let run = world.run_azure(&azure, &["work-pool", "deprovision", &world.pool, "--yes"]);
    run.ok();
    assert!(run.all().contains("not created by pushpool"), "{}", run.all());
    let subscription = azure.subscription.state().await;
    assert_eq!(subscription["resourceGroups"][0]["name"], "prefect-aci-push-pool-rg", "the group stays");
    assert_eq!(subscription["resourceGroups"][0]["identities"].as_array().unwrap().len(), 1, "the identity stays");
    assert_eq!(subscription["resourceGroups"][0]["registries"].as_array().unwrap().len(), 0, "the registry pushpool made goes");
    let apps = azure.tenant.applications_named("prefect-aci-push-pool-app").await;
    assert_eq!(apps.len(), 1, "the app registration stays");
    let secrets: Vec<&str> = apps[0]["passwordCredentials"].as_array().unwrap().iter().map(|s| s["keyId"].as_str().unwrap()).collect();
    assert_eq!(secrets, [app.secrets[0].0.as_str()], "the block's secret went with it, the other one stays");
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn a_block_whose_secret_expired_gets_a_new_one_and_the_secret_limit_stops_the_plan() {
    let world = World::new("acs").await;
    let azure = AzureWorld::new("acs").await;
    world.run_azure(&azure, &world.args(CREATE)).ok();
    let apps = azure.tenant.applications_named("prefect-aci-push-pool-app").await;
    let (object_id, first) = (apps[0]["id"].as_str().unwrap().to_owned(), apps[0]["passwordCredentials"][0]["keyId"].as_str().unwrap().to_owned());
    azure.tenant.expire_secret(&object_id, &first).await;
    let plan = world.run_azure(&azure, &["plan", "--type", "azure-container-instance:push", &world.pool]);
    assert!(plan.all().contains(&format!("holds secret {first}, which is inactive")), "{}", plan.all());
    world.run_azure(&azure, &["work-pool", "provision-infra", &world.pool, "--yes"]).ok();
    let loaded = world.load_aci_credentials_with_prefect(&format!("{}-push-pool-credentials", world.pool), Some((&azure.fake, &azure.tenant)));
    assert_eq!(loaded["login_status"], 200, "the block holds a working secret again: {loaded}");
    let apps = azure.tenant.applications_named("prefect-aci-push-pool-app").await;
    let left: Vec<&str> = apps[0]["passwordCredentials"].as_array().unwrap().iter().map(|s| s["keyId"].as_str().unwrap()).collect();
    assert!(left.len() == 1 && left[0] != first, "the expired secret went, its replacement is the only one: {left:?}");

    let world = World::new("acs").await;
    let azure = AzureWorld::new("acs").await;
    let seeded = azure.tenant.seed_application("prefect-aci-push-pool-app", &["managed-by=pushpool"], 10, true).await;
    let run = world.run_azure(&azure, &world.args(CREATE));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.all().contains("already has 10 secrets") && run.all().contains(&seeded.secrets[0].0), "{}", run.all());
    assert_eq!(azure.writes_since(&support::azure::AzureMarks::default()).await, Vec::<String>::new(), "nothing was written");
}

/// The keyIds of the application's secrets, and the keyId of the one the block holds (the only
/// one the token endpoint accepts among those `seeded` does not name).
async fn secrets_of(azure: &AzureWorld, seeded: &[String]) -> (Vec<String>, String) {
    let apps = azure.tenant.applications_named("prefect-aci-push-pool-app").await;
    let ids: Vec<String> = apps[0]["passwordCredentials"].as_array().unwrap().iter().map(|s| s["keyId"].as_str().unwrap().to_owned()).collect();
    let mine: Vec<&String> = ids.iter().filter(|id| !seeded.contains(id)).collect();
    let [held] = &mine[..] else { panic!("one secret of pushpool's: {ids:?}") };
    let held = (*held).clone();
    (ids, held)
}

#[tokio::test]
async fn a_block_whose_secret_expired_gets_a_new_one_the_dead_one_goes_and_a_users_own_expired_secret_stays() {
    let world = World::new("acx").await;
    let azure = AzureWorld::new("acx").await;
    // The application exists with nine secrets of the user's, the first of them expired.
    let seeded = azure.tenant.seed_application("prefect-aci-push-pool-app", &["managed-by=pushpool"], 9, true).await;
    let own: Vec<String> = seeded.secrets.iter().map(|(id, _)| id.clone()).collect();
    azure.tenant.expire_secret(&seeded.id, &own[0]).await;
    world.run_azure(&azure, &world.args(CREATE)).ok();
    let (ids, first) = secrets_of(&azure, &own).await;
    assert_eq!(ids.len(), 10);
    let marks = azure.marks().await;
    assert!(world.run_azure(&azure, &world.args(CREATE)).ok().stdout.contains("Nothing to change"), "a dead secret the block never held is not pushpool's");
    assert_eq!(azure.writes_since(&marks).await, Vec::<String>::new());

    // The block's secret expires: with ten secrets, it is removed before the new one is added.
    azure.tenant.expire_secret(&seeded.id, &first).await;
    let plan = world.run_azure(&azure, &["plan", "--type", "azure-container-instance:push", &world.pool]);
    assert!(plan.all().contains(&format!("holds secret {first}, which is inactive; the dead secret is deleted before the new one is minted")), "{}", plan.all());
    let marks = azure.marks().await;
    let run = world.run_azure(&azure, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    run.ok();
    let writes = azure.writes_since(&marks).await;
    let removed = writes.iter().position(|w| w.ends_with("removePassword"));
    let added = writes.iter().position(|w| w.ends_with("addPassword"));
    assert!(removed.is_some() && removed < added && writes.iter().filter(|w| w.ends_with("removePassword")).count() == 1, "{writes:?}");
    let (ids, held) = secrets_of(&azure, &own).await;
    assert_eq!(ids.len(), 10, "{ids:?}");
    assert!(!ids.contains(&first) && held != first && ids.contains(&own[0]), "the block's dead secret went, the user's stays: {ids:?}");
    let loaded = world.load_aci_credentials_with_prefect(&format!("{}-push-pool-credentials", world.pool), Some((&azure.fake, &azure.tenant)));
    assert_eq!(loaded["login_status"], 200, "the block holds a working secret: {loaded}");
    let marks = azure.marks().await;
    assert!(world.run_azure(&azure, &world.args(CREATE)).ok().stdout.contains("Nothing to change"));
    assert_eq!(azure.writes_since(&marks).await, Vec::<String>::new());
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn killed_after_any_write_of_a_secret_replacement_a_rerun_removes_the_expired_secret_and_leaves_one() {
    /// A provisioned world whose block's secret expired since, and that secret's keyId.
    async fn with_expired_secret(world: &World, azure: &AzureWorld) -> String {
        world.run_azure(azure, &world.args(CREATE)).ok();
        let apps = azure.tenant.applications_named("prefect-aci-push-pool-app").await;
        let (object_id, first) = (apps[0]["id"].as_str().unwrap().to_owned(), apps[0]["passwordCredentials"][0]["keyId"].as_str().unwrap().to_owned());
        azure.tenant.expire_secret(&object_id, &first).await;
        first
    }
    let (clean, clean_azure) = (World::new("acy").await, AzureWorld::new("acy").await);
    with_expired_secret(&clean, &clean_azure).await;
    let (azure_from, prefect_from) = (clean_azure.marks().await, clean.marks().await.1);
    clean.run_azure(&clean_azure, &clean.args(CREATE)).ok();
    let total = clean_azure.calls_since(&azure_from).await.iter().filter(|c| c.write && c.status < 400).count()
        + clean.prefect.calls().await.iter().skip(prefect_from).filter(|c| c.write && c.status < 400).count();
    println!("killed after each of {total} writes");

    let mut dead_cleaned = 0;
    for k in 1..=total {
        let world = World::new("acy").await;
        let azure = AzureWorld::new("acy").await;
        let dead = with_expired_secret(&world, &azure).await;
        let azure = create_killed_after(&world, azure, k).await;

        let rerun = world.run_azure(&azure, &world.args(CREATE));
        assert_eq!(rerun.code, 0, "killed after write {k}, the re-run failed:\n{}", rerun.all());
        if rerun.all().contains(&format!("deletes dead secret {dead}, which an interrupted run replaced")) {
            dead_cleaned += 1;
        }
        let apps = azure.tenant.applications_named("prefect-aci-push-pool-app").await;
        assert_eq!(apps[0]["passwordCredentials"].as_array().unwrap().len(), 1, "killed after write {k}: one secret");
        assert!(!apps[0]["tags"].to_string().contains("pending"), "killed after write {k}: the mark is cleared: {}", apps[0]["tags"]);
        let loaded = world.load_aci_credentials_with_prefect(&format!("{}-push-pool-credentials", world.pool), Some((&azure.fake, &azure.tenant)));
        assert_eq!(loaded["login_status"], 200, "killed after write {k}: the block's secret works");
        let marks = azure.marks().await;
        assert!(world.run_azure(&azure, &world.args(CREATE)).ok().stdout.contains("Nothing to change"), "killed after write {k}");
        assert_eq!(azure.writes_since(&marks).await, Vec::<String>::new(), "killed after write {k}");
    }
    assert!(dead_cleaned > 0, "some crash fell between the block write and the expired secret's removal, and the re-run removed it");
}

#[tokio::test]
async fn replication_delay_slow_operations_and_throttling_are_waited_out() {
    let world = World::new("acr").await;
    let azure = AzureWorld::new("acr").await;
    azure.tenant.faults(json!({"principal_not_found": 2, "throttle": {"^applications\\.create$": 1}})).await;
    azure.subscription.faults(json!({"operation_polls": 4, "throttle": {"resourceGroups/write$": 1}, "retry_after": 1})).await;
    let run = world.run_azure(&azure, &world.args(CREATE));
    run.ok();
    let statuses: Vec<u16> = azure.calls_since(&support::azure::AzureMarks::default()).await.iter().map(|c| c.status).collect();
    assert!(statuses.contains(&429) && statuses.contains(&400), "throttled and PrincipalNotFound at least once: {statuses:?}");
    assert!(
        run.stderr.contains("role assignment") && run.stderr.contains(": waiting for Entra ID to replicate principal "),
        "the wait is named on its step's line:\n{}",
        run.stderr
    );
    assert_eq!(azure.subscription.state().await["roleAssignments"].as_array().unwrap().len(), 2);
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn dry_run_and_plan_write_nothing_and_name_the_subscription_and_tenant() {
    let world = World::new("acd").await;
    let azure = AzureWorld::new("acd").await;
    let prefect = world.marks().await;
    world.run_azure(&azure, &[&world.args(CREATE)[..], &["--dry-run"]].concat()).ok();
    let json = world.run_azure(&azure, &["plan", "--type", "azure-container-instance:push", &world.pool, "--output", "json"]);
    let document: Value = serde_json::from_str(&json.ok().stdout).unwrap();
    assert_eq!(document["targets"][0]["cloud"], "azure");
    assert_eq!(document["targets"][0]["subscription"], azure.subscription.id.as_str());
    assert_eq!(document["targets"][0]["tenant"], azure.tenant.id.as_str());
    let markdown = world.run_azure(&azure, &["plan", "--type", "azure-container-instance:push", &world.pool, "--output", "markdown"]);
    assert!(markdown.ok().stdout.contains(&format!("Azure subscription {}", azure.subscription.id)), "{}", markdown.stdout);
    assert_eq!(azure.writes_since(&support::azure::AzureMarks::default()).await, Vec::<String>::new());
    world.assert_no_writes_since(prefect).await;
    azure.assert_others_untouched().await;
}

#[tokio::test]
async fn no_subscription_and_a_refused_token_are_named_with_the_fix_and_nothing_is_written() {
    let world = World::new("acn").await;
    let azure = AzureWorld::new("acn").await.logged_out();
    let run = world.run_azure(&azure, &world.args(CREATE));
    assert_eq!(run.code, 1);
    assert!(run.all().contains("Azure subscription: none is set") && run.all().contains("az login"), "{}", run.all());

    let azure = AzureWorld::new("acn").await.refusing();
    let run = world.run_azure(&azure, &world.args(CREATE));
    assert_eq!(run.code, 1);
    assert!(run.all().contains("az login") && run.all().contains("AZURE_CLIENT_SECRET"), "{}", run.all());
    assert!(azure.calls_since(&support::azure::AzureMarks::default()).await.is_empty(), "no call without a token");
    assert!(world.work_pool().await.is_none());
}

/// Runs `work-pool create` in `world` and `azure`, their channels frozen together right after
/// the k-th write, and kills it there; `azure` comes back talking to the fake directly.
async fn create_killed_after(world: &World, azure: AzureWorld, k: usize) -> AzureWorld {
    use support::{Channel, hold_group_after, kill_after_writes, unique};
    let group = unique("acc-group");
    let mut azure = azure.through_proxy(&world.sandbox, Some(&group)).await;
    let prefect = Channel::open_in(&world.sandbox, &world.sandbox.prefect, Some(&group)).await;
    hold_group_after(&world.sandbox, &group, k).await;
    let mut command = world.azure_command(&azure, &world.args(CREATE));
    command.env("PREFECT_API_URL", format!("{}/api", prefect.url()));
    kill_after_writes(&mut command, &[azure.channel.as_ref().unwrap(), &prefect], k).await;
    azure.drop_proxy();
    azure
}

#[tokio::test]
async fn killed_after_any_write_a_rerun_converges_with_no_orphan_secret() {
    let clean = World::new("acc").await;
    let clean_azure = AzureWorld::new("acc").await;
    clean.run_azure(&clean_azure, &clean.args(CREATE)).ok();
    let expected = end_state(&clean, &clean_azure).await;
    let total = clean_azure.calls_since(&support::azure::AzureMarks::default()).await.iter().filter(|c| c.write && c.status < 400).count()
        + clean.prefect.calls().await.iter().filter(|c| c.write && c.status < 400).count();
    println!("killed after each of {total} writes");
    for k in 1..=total {
        let world = World::new("acc").await;
        let azure = create_killed_after(&world, AzureWorld::new("acc").await, k).await;
        let direct = &azure;
        let rerun = world.run_azure(direct, &world.args(CREATE));
        assert_eq!(rerun.code, 0, "killed after write {k}, the re-run failed:\n{}", rerun.all());
        assert_eq!(end_state(&world, direct).await, expected, "killed after write {k}");
        let marks = direct.marks().await;
        assert!(world.run_azure(direct, &world.args(CREATE)).ok().stdout.contains("Nothing to change"), "killed after write {k}");
        assert_eq!(direct.writes_since(&marks).await, Vec::<String>::new(), "killed after write {k}");
    }
}

/// The end state of a provisioning, without run-specific ids: one working secret, held.
async fn end_state(world: &World, azure: &AzureWorld) -> Value {
    let mut state = inventory(azure).await;
    let loaded = world.load_aci_credentials_with_prefect(&format!("{}-push-pool-credentials", world.pool), Some((&azure.fake, &azure.tenant)));
    state["login"] = loaded["login_status"].clone();
    state["pool"] = json!(world.work_pool().await.is_some());
    // Pool names differ between worlds.
    serde_json::from_str(&state.to_string().replace(&world.pool, "{pool}")).unwrap()
}

#[tokio::test]
async fn a_hybrid_aci_pool_gets_the_workers_template_with_the_same_defaults() {
    let world = World::new("ach").await;
    let azure = AzureWorld::new("ach").await;
    world.run_azure(&azure, &["work-pool", "create", &world.pool, "--type", "azure-container-instance", "--provision-infra", "--yes"]).ok();
    let pool = world.work_pool().await.unwrap();
    assert_eq!(pool["type"], "azure-container-instance");
    let defaults = world.job_variable_defaults().await;
    assert_eq!(defaults["resource_group_name"], "prefect-aci-push-pool-rg");
    assert_eq!(defaults["subscription_id"], azure.subscription.id.as_str());
    assert!(defaults["aci_credentials"]["$ref"]["block_document_id"].is_string());
    assert!(defaults["image_registry"]["registry_url"].as_str().is_some_and(|u| u.ends_with(".azurecr.io")));
    assert!(pool["base_job_template"]["job_configuration"].as_object().is_some_and(|c| !c.is_empty()), "the worker's own template");
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn a_pool_made_in_another_subscription_is_rerun_and_torn_down_there() {
    let world = World::new("aciplace").await;
    let azure = AzureWorld::new("aciplace").await;
    // The profile's default is subscriptions[1]; the pool goes to the other one, in westeurope.
    let elsewhere = azure.subscriptions.iter().find(|s| s.id != azure.subscription.id).unwrap().clone();
    let mut create = world.args(CREATE);
    create.extend(["--subscription", elsewhere.id.as_str(), "--location", "westeurope"]);
    world.run_azure(&azure, &create).ok();
    assert_eq!(elsewhere.state().await["resourceGroups"][0]["location"], "westeurope");
    let default_calls = azure.subscription.calls().await.len();

    // Later runs without flags work in the pool's subscription: the default one is not even read.
    let marks = world.marks().await;
    let before = elsewhere.calls().await.len();
    let rerun = world.run_azure(&azure, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    rerun.ok();
    assert!(rerun.stdout.contains("Nothing to change"), "{}", rerun.all());
    world.assert_no_writes_since(marks).await;
    let writes: Vec<AzureCall> = elsewhere.calls().await.into_iter().skip(before).filter(|c| c.method != "GET").collect();
    assert!(writes.is_empty(), "{:?}", writes.iter().map(AzureCall::name).collect::<Vec<_>>());
    assert_eq!(azure.subscription.calls().await.len(), default_calls, "the default subscription untouched");

    // The default subscription asked for by flag is refused, naming both places.
    let moved = world.run_azure(&azure, &["work-pool", "provision-infra", &world.pool, "--subscription", &azure.subscription.id, "--yes"]);
    assert_eq!(moved.code, 1, "{}", moved.all());
    assert!(moved.stderr.contains(&format!("subscription {}", elsewhere.id)) && moved.stderr.contains("(from the pool's record)"), "{}", moved.stderr);
    assert!(moved.stderr.contains(&format!("--subscription {} names another place", azure.subscription.id)), "{}", moved.stderr);
    assert_eq!(azure.subscription.calls().await.len(), default_calls, "refused before any read");

    let dry = world.run_azure(&azure, &["work-pool", "deprovision", &world.pool, "--dry-run"]);
    assert!(dry.ok().stdout.contains("location westeurope (from the pool's record)"), "{}", dry.stdout);
    // As a pool Prefect's own CLI made: no record, its `subscription_id` job variable says where.
    world.forget_record().await;
    let down = world.run_azure(&azure, &["work-pool", "deprovision", &world.pool, "--yes"]);
    down.ok();
    assert!(down.stdout.contains(&format!("Azure subscription {}", elsewhere.id)) && down.stdout.contains("(from the pool's job variables)"), "{}", down.stdout);
    assert_eq!(elsewhere.state().await["resourceGroups"], json!([]), "torn down where it lives");
    assert_eq!(azure.subscription.calls().await.len(), default_calls, "the default subscription untouched");
}

/// Provisions the pool, then again: the second run must find everything the first made, change
/// nothing and write nothing to Azure. Returns the second run's Azure calls.
async fn provision_twice(world: &World, azure: &AzureWorld) -> Vec<support::azure::AzureCall> {
    world.run_azure(azure, &world.args(CREATE)).ok();
    let marks = azure.marks().await;
    let again = world.run_azure(azure, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    assert!(again.ok().all().contains("Nothing to change"), "{}", again.all());
    assert_eq!(azure.writes_since(&marks).await, Vec::<String>::new(), "the re-run wrote nothing (no second registry, app or service principal)");
    azure.calls_since(&marks).await
}

#[tokio::test]
async fn with_more_registries_in_the_group_than_a_page_holds_a_rerun_finds_its_own_and_writes_nothing() {
    let world = World::new("acp").await;
    let azure = AzureWorld::new("acp").await;
    azure.subscription.seed_resource_group("prefect-aci-push-pool-rg", "eastus", &[]).await;
    for i in 0..5 {
        let other = format!("other-pool-{i}");
        azure
            .subscription
            .seed_registry("prefect-aci-push-pool-rg", &support::azure::unique_registry_name(&format!("prefectother{i}")), &[("prefect.work-pool", other.as_str())])
            .await;
    }
    let rerun = provision_twice(&world, &azure).await;
    let group = azure.subscription.resource_group("prefect-aci-push-pool-rg").await.unwrap();
    let ours: Vec<&Value> = group["registries"].as_array().unwrap().iter().filter(|r| r["tags"]["prefect.work-pool"] == world.pool.as_str()).collect();
    assert_eq!((group["registries"].as_array().unwrap().len(), ours.len()), (6, 1), "{group}");
    // Six registries at two a page: the re-run read every page of each list it made.
    let lists = rerun.iter().filter(|c| c.action == "Microsoft.ContainerRegistry/registries/read" && c.path.ends_with("/registries")).count();
    assert!(lists >= 3, "the registry list was read to its third page ({lists} page reads)");
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn with_filtered_graph_pages_short_but_linked_a_rerun_makes_no_second_app_or_principal() {
    let world = World::new("acg").await;
    let azure = AzureWorld::new("acg").await;
    for i in 0..6 {
        azure.tenant.seed_application(&format!("someone else's app {i}"), &[], 0, true).await;
    }
    let rerun = provision_twice(&world, &azure).await;
    let apps = azure.tenant.applications_named("prefect-aci-push-pool-app").await;
    assert_eq!(apps.len(), 1);
    let tenant = azure.tenant.state().await;
    let principals = tenant["servicePrincipals"].as_array().unwrap().iter().filter(|s| s["appId"] == apps[0]["appId"]).count();
    assert_eq!(principals, 1);
    // Seven applications scanned two at a time: the filtered queries went past their empty first pages.
    let reads = rerun.iter().filter(|c| c.action == "applications.list").count();
    assert!(reads >= 4, "the application query was read to its last page ({reads} page reads)");
    azure.fake.assert_no_violations(&azure).await;
}

#[tokio::test]
async fn graphs_replication_delays_for_a_new_app_are_waited_out_and_named_on_the_progress_line() {
    let world = World::new("acl").await;
    let azure = AzureWorld::new("acl").await;
    azure.tenant.faults(json!({"app_not_replicated": 2, "object_not_found": 2})).await;
    let run = world.run_azure(&azure, &world.args(CREATE));
    run.ok();
    let graph: Vec<(String, u16)> = azure.tenant.calls().await.into_iter().map(|c| (c.action, c.status)).collect();
    assert_eq!(graph.iter().filter(|c| *c == &("servicePrincipals.create".to_owned(), 400)).count(), 2, "{graph:?}");
    assert!(graph.iter().any(|(_, status)| *status == 404), "a request naming the new application met 404 first: {graph:?}");
    assert!(
        run.stderr.contains("service principal prefect-aci-push-pool-app: waiting for Entra ID to replicate application prefect-aci-push-pool-app, created moments ago"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(": waiting for Entra ID to replicate 'prefect-aci-push-pool-app' ("), "{}", run.stderr);
    assert_eq!(azure.tenant.applications_named("prefect-aci-push-pool-app").await.len(), 1);
    let loaded = world.load_aci_credentials_with_prefect(&format!("{}-push-pool-credentials", world.pool), Some((&azure.fake, &azure.tenant)));
    assert_eq!(loaded["login_status"], 200, "the block's secret works: {loaded}");
    azure.fake.assert_no_violations(&azure).await;
}

/// Names and tag values Azure refuses are refused by the plan before any call to Azure.
#[tokio::test]
async fn names_azure_refuses_are_refused_before_any_call() {
    let world = World::new("acnm").await;
    let azure = AzureWorld::new("acnm").await;
    let long = "p".repeat(257);
    let with_set = |set: &str| [&world.args(CREATE)[..], &["--set", set]].concat().iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let mut long_pool: Vec<String> = CREATE.iter().map(|a| a.to_string()).collect();
    long_pool[2] = long.clone();
    let cases = [
        (with_set("resource_group=prefect-rg."), "resource group name 'prefect-rg.' (resource 'resource_group')", "ends with a period"),
        (with_set("identity=-acr-identity"), "user-assigned identity name '-acr-identity' (resource 'identity')", "--set identity=<name>"),
        (long_pool, "(257 characters)", "Azure tag values are up to 256 characters"),
    ];
    for (args, expected, rule) in cases {
        let run = world.run_azure(&azure, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(run.stderr.contains(expected) && run.stderr.contains(rule), "{}", run.stderr);
        assert!(azure.calls_since(&support::azure::AzureMarks::default()).await.is_empty(), "no call to Azure");
    }
    assert!(world.work_pool().await.is_none());
}
