//! Cloud Run pools against the sandbox's GCP fake and the real Prefect server.
//!
//! What these prove: the wire contract (every request pushpool sends, and every answer the fake
//! gives, fits Google's discovery documents: each test ends with no contract violation) and
//! pushpool's handling of Google's documented semantics as the fake models them (409
//! ALREADY_EXISTS, 403 for a missing project, operations that finish after polls, etag races,
//! SERVICE_DISABLED while an API propagates, a service account not yet visible, the key limit,
//! an organization policy against keys). Not the live cloud.

mod support;

use serde_json::{Value, json};
use support::gcp::{ARTIFACT_REGISTRY, GcpFake, GcpProject, GcpWorld, RUN};
use support::{Channel, World, hold_group_after, kill_after_writes, unique};

const CREATE_V2: &[&str] = &["work-pool", "create", "{pool}", "--type", "cloud-run-v2:push", "--provision-infra", "--yes"];

#[tokio::test]
async fn a_fresh_project_gets_everything_a_rerun_writes_nothing_and_prefect_gcp_loads_the_block() {
    let world = World::new("cr").await;
    let gcp = GcpWorld::new("cr").await;
    let project = &gcp.project;

    let run = world.run_gcp(&gcp, &world.args(CREATE_V2));
    run.ok();
    let writes = project.writes_since(0).await;
    for expected in [
        "serviceusage.services.batchEnable",
        "artifactregistry.projects.locations.repositories.create",
        "iam.projects.serviceAccounts.create",
        "cloudresourcemanager.projects.setIamPolicy",
        "iam.projects.serviceAccounts.keys.create",
    ] {
        assert!(writes.contains(&expected.to_owned()), "{expected} not in {writes:?}\n{}", run.all());
    }
    assert_eq!(writes.iter().filter(|w| w.ends_with("keys.create")).count(), 1, "one key: {writes:?}");
    let fresh_calls = project.calls().await;
    let polls = fresh_calls.iter().filter(|c| c.name().ends_with("operations.get")).count();

    // The project holds what the pool needs, in the project asked for, labelled as pushpool's.
    let email = project.email("prefect-cloud-run");
    assert_eq!(project.service_state(RUN).await, "ENABLED");
    assert_eq!(project.service_state(ARTIFACT_REGISTRY).await, "ENABLED");
    let labels = project.repository_labels("us-central1", "prefect-images").await.expect("the repository exists");
    assert_eq!(labels.get("managed-by").map(String::as_str), Some("pushpool"));
    assert_eq!(labels.get("prefect-work-pool"), Some(&world.pool.to_lowercase()));
    for role in ["roles/iam.serviceAccountUser", "roles/run.developer"] {
        assert!(project.members(role).await.contains(&format!("serviceAccount:{email}")), "{role}");
    }
    assert_eq!(project.members("roles/owner").await, ["user:tester@example.com"], "nothing else in the policy changed");
    let keys = project.user_keys(&email).await;
    assert_eq!(keys.len(), 1);

    // The pool's defaults name the block, the region and the service account.
    let defaults = world.job_variable_defaults().await;
    let block = world.gcp_block().await.expect("the credentials block exists");
    assert_eq!(defaults["credentials"]["$ref"]["block_document_id"], block["id"]);
    assert_eq!(defaults["region"], "us-central1");
    assert_eq!(defaults["service_account_name"], email.as_str());

    // Prefect's own Python client with prefect-gcp reads the key pushpool stored.
    let loaded = world.load_gcp_credentials_with_prefect(&format!("{}-push-pool-credentials", world.pool));
    assert_eq!(loaded["project"], project.id.as_str());
    assert_eq!(loaded["client_email"], email.as_str());
    assert_eq!(loaded["private_key_id"], keys[0].0.as_str());
    assert_eq!(loaded["type"], "service_account");

    // The build namespace is the region's registry path of the repository.
    let profiles = std::fs::read_to_string(world.profiles_path()).unwrap();
    assert!(profiles.contains(&format!("us-central1-docker.pkg.dev/{}/prefect-images", project.id)), "{profiles}");

    // A re-run reads and writes nothing, in Google Cloud or in Prefect.
    let (gcp_mark, marks) = (project.mark().await, world.marks().await);
    let again = world.run_gcp(&gcp, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    again.ok();
    assert!(again.all().contains("Nothing to change"), "{}", again.all());
    assert_eq!(project.writes_since(gcp_mark).await, Vec::<String>::new());
    world.assert_no_writes_since(marks).await;
    let rerun_calls: Vec<String> = project.calls().await.iter().skip(gcp_mark).map(|c| c.name()).collect();
    // The counts the README reports: every call pushpool makes to Google, as the fake saw them.
    println!("fresh run: {} Google calls ({} writes, {polls} operation polls); re-run: {} reads: {rerun_calls:?}", fresh_calls.len(), writes.len(), rerun_calls.len());
    assert!(rerun_calls.len() <= 8, "a re-run reads each resource once: {rerun_calls:?}");
    gcp.fake.assert_no_violations(project).await;
}

/// What a Cloud Run pool's provisioning leaves, in the project and in Prefect, without the
/// values that differ between runs (key ids, etags, block ids).
async fn end_state(world: &World, project: &GcpProject) -> Value {
    let state = project.state().await;
    let email = project.email("prefect-cloud-run");
    let keys = project.user_keys(&email).await;
    let block = world.gcp_block().await;
    let held = match &block {
        Some(_) => world.load_gcp_credentials_with_prefect(&format!("{}-push-pool-credentials", world.pool))["private_key_id"].clone(),
        None => Value::Null,
    };
    let defaults = match world.work_pool().await {
        Some(_) => {
            let mut defaults = world.job_variable_defaults().await;
            defaults["credentials"] = json!(defaults["credentials"]["$ref"]["block_document_id"] == block.as_ref().map_or(Value::Null, |b| b["id"].clone()));
            defaults
        }
        None => Value::Null,
    };
    let mut bindings: Vec<String> = state["iamPolicy"]["bindings"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["members"].as_array().cloned().unwrap_or_default().into_iter().map(move |m| format!("{} {}", b["role"].as_str().unwrap(), m.as_str().unwrap())))
        .collect();
    bindings.sort();
    let services: Value = [RUN, ARTIFACT_REGISTRY].iter().map(|s| (s.to_string(), state["services"][s].clone())).collect();
    let state = json!({
        "services": services,
        "accounts": state["serviceAccounts"].as_object().map(|a| a.keys().cloned().collect::<Vec<_>>()),
        "keys": keys.iter().map(|(id, disabled)| json!({"held": held == id.as_str(), "disabled": disabled})).collect::<Vec<_>>(),
        "repositories": project.repository_labels("us-central1", "prefect-images").await,
        "bindings": bindings,
        "block": block.is_some(),
        "defaults": defaults,
    });
    // Project ids and pool names differ between worlds.
    let text = state.to_string().replace(&project.id, "{project}").replace(&world.pool.to_lowercase(), "{pool}").replace(&world.pool, "{pool}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn existing_service_account_and_repository_are_used_as_they_are_and_a_teardown_keeps_them() {
    let fake = GcpFake::get();
    let project = fake.project_with("crx", &[RUN, ARTIFACT_REGISTRY]).await;
    let email = project.seed_service_account("prefect-cloud-run", Some("made by the platform team")).await;
    project.seed_repository("us-central1", "prefect-images", &[("team", "data")]).await;
    let world = World::new("crx").await;
    let gcp = GcpWorld::on(project.clone()).await;

    world.run_gcp(&gcp, &world.args(CREATE_V2)).ok();
    let mut writes = project.writes_since(0).await;
    writes.sort();
    assert_eq!(
        writes,
        [
            "cloudresourcemanager.projects.setIamPolicy",
            "iam.projects.serviceAccounts.keys.create",
            "iam.projects.serviceAccounts.patch",
            "iam.projects.serviceAccounts.patch"
        ],
        "only the roles and the key (the account marked, then settled) are written"
    );
    assert_eq!(project.repository_labels("us-central1", "prefect-images").await.unwrap().get("team").map(String::as_str), Some("data"));

    // The teardown takes the key with the block and the pool, and keeps what pushpool did not make.
    let run = world.run_gcp(&gcp, &["work-pool", "deprovision", &world.pool, "--yes"]);
    run.ok();
    assert!(run.all().contains("not created by pushpool"), "{}", run.all());
    assert!(project.user_keys(&email).await.is_empty(), "the block's key went with it");
    assert!(world.gcp_block().await.is_none() && world.work_pool().await.is_none());
    assert!(project.repository_labels("us-central1", "prefect-images").await.is_some(), "the repository stays");
    assert!(project.state().await["serviceAccounts"].get(&email).is_some(), "the account stays");
    assert!(project.members("roles/run.developer").await.contains(&format!("serviceAccount:{email}")), "its roles stay with it");
    gcp.fake.assert_no_violations(&project).await;
}

/// Lists page as Google documents them (AIP-158), in the fake: more accounts and repositories
/// beside the pool's own than a page holds (pushpool reads its own by name, so a re-run still
/// finds them), and pages with fewer images than asked, even none, before the last.
#[tokio::test]
async fn among_more_accounts_and_repositories_than_a_page_holds_a_rerun_writes_nothing_and_images_past_empty_pages_keep_the_repository() {
    let world = World::new("crp").await;
    let gcp = GcpWorld::new("crp").await;
    let project = &gcp.project;
    for i in 0..5 {
        project.seed_service_account(&format!("other-account-{i}"), None).await;
        project.seed_repository("us-central1", &format!("other-images-{i}"), &[]).await;
    }
    world.run_gcp(&gcp, &world.args(CREATE_V2)).ok();
    let (mark, marks) = (project.mark().await, world.marks().await);
    let again = world.run_gcp(&gcp, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    again.ok();
    assert!(again.all().contains("Nothing to change"), "{}", again.all());
    assert_eq!(project.writes_since(mark).await, Vec::<String>::new());
    world.assert_no_writes_since(marks).await;

    // The repository holds an image, behind two pages that hold none: reading only the first
    // page would call it empty and delete it with its image.
    project.seed_images("us-central1", "prefect-images", 1).await;
    project.faults(json!({"empty_pages": 2})).await;
    let mark = project.mark().await;
    let run = world.run_gcp(&gcp, &["work-pool", "deprovision", &world.pool, "--yes"]);
    run.ok();
    assert!(run.stdout.contains("prefect-images: holds images; --force deletes them with it"), "{}", run.all());
    assert!(project.repository_labels("us-central1", "prefect-images").await.is_some(), "the repository stays");
    let listed = project.calls().await.iter().skip(mark).filter(|c| c.name().ends_with("dockerImages.list")).count();
    assert_eq!(listed, 3, "two empty pages, then the page with the image");
    gcp.fake.assert_no_violations(project).await;
}

#[tokio::test]
async fn a_teardown_returns_the_project_to_its_starting_state_and_never_disables_an_api() {
    let world = World::new("crt").await;
    let gcp = GcpWorld::new("crt").await;
    let project = &gcp.project;
    let start = end_state(&world, project).await;
    world.run_gcp(&gcp, &world.args(CREATE_V2)).ok();

    let plan = world.run_gcp(&gcp, &["work-pool", "deprovision", &world.pool, "--dry-run"]);
    plan.ok();
    assert!(plan.all().contains("never disables an API"), "{}", plan.all());
    let run = world.run_gcp(&gcp, &["work-pool", "deprovision", &world.pool, "--yes"]);
    run.ok();
    let order: Vec<&str> = run.stderr.lines().filter_map(|l| l.trim().strip_prefix("✓ ")).collect();
    let at = |what: &str| order.iter().position(|l| l.starts_with(what)).unwrap_or_else(|| panic!("{what} not deleted: {order:?}"));
    assert!(at("project IAM roles") < at("service account prefect"), "bindings go before their account: {order:?}");
    let mut end = end_state(&world, project).await;
    assert_eq!(end["services"], json!({RUN: "ENABLED", ARTIFACT_REGISTRY: "ENABLED"}), "the APIs stay enabled");
    end["services"] = start["services"].clone();
    assert_eq!(end, start);

    let (mark, marks) = (project.mark().await, world.marks().await);
    let again = world.run_gcp(&gcp, &["work-pool", "deprovision", &world.pool, "--type", "cloud-run-v2:push", "--yes"]);
    again.ok();
    assert!(again.stdout.contains("Nothing to delete"), "{}", again.all());
    assert_eq!(project.writes_since(mark).await, Vec::<String>::new());
    world.assert_no_writes_since(marks).await;
    gcp.fake.assert_no_violations(project).await;
}

/// A provisioned world: its GCP world, the service account's email and the block's key id.
async fn provisioned(prefix: &str) -> (World, GcpWorld, String, String) {
    let world = World::new(prefix).await;
    let gcp = GcpWorld::new(prefix).await;
    world.run_gcp(&gcp, &world.args(CREATE_V2)).ok();
    let email = gcp.project.email("prefect-cloud-run");
    let first = gcp.project.user_keys(&email).await[0].0.clone();
    (world, gcp, email, first)
}

#[tokio::test]
async fn a_block_whose_key_was_deleted_or_disabled_gets_a_new_one() {
    let (world, gcp, email, first) = provisioned("crk").await;
    let project = &gcp.project;
    let block_name = format!("{}-push-pool-credentials", world.pool);

    project.delete_key(&email, &first).await;
    let plan = world.run_gcp(&gcp, &["plan", "--type", "cloud-run-v2:push", &world.pool]);
    assert!(plan.all().contains(&format!("holds key {first}, which no longer exists")), "{}", plan.all());
    let fixed = world.run_gcp(&gcp, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    assert!(fixed.ok().all().contains("takes new values: key.secret"), "{}", fixed.all());
    let second = project.user_keys(&email).await;
    assert_eq!(second.len(), 1);
    assert_eq!(world.load_gcp_credentials_with_prefect(&block_name)["private_key_id"], second[0].0.as_str());

    project.disable_key(&email, &second[0].0).await;
    let run = world.run_gcp(&gcp, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    run.ok();
    assert!(run.all().contains("which is inactive; the dead key is deleted once the block holds the new one"), "{}", run.all());
    let held = world.load_gcp_credentials_with_prefect(&block_name)["private_key_id"].as_str().unwrap().to_owned();
    assert_ne!(held, second[0].0);
    assert_eq!(project.user_keys(&email).await, [(held, false)], "the disabled key the block held went: one key left");
    gcp.fake.assert_no_violations(project).await;
}

#[tokio::test]
async fn a_block_whose_key_expired_gets_a_new_one_the_dead_one_goes_and_a_users_own_disabled_key_stays() {
    let (world, gcp, email, first) = provisioned("cre").await;
    let project = &gcp.project;
    let block_name = format!("{}-push-pool-credentials", world.pool);
    // The user's own keys, one disabled, filling the account to Google's ten with the block's.
    let own = project.seed_keys(&email, 9).await;
    project.disable_key(&email, &own[0]).await;
    let (mark, marks) = (project.mark().await, world.marks().await);
    assert!(world.run_gcp(&gcp, &world.args(CREATE_V2)).ok().stdout.contains("Nothing to change"), "a dead key the block never held is not pushpool's");
    assert_eq!(project.writes_since(mark).await, Vec::<String>::new());
    world.assert_no_writes_since(marks).await;

    project.expire_key(&email, &first).await;
    let mark = project.mark().await;
    let run = world.run_gcp(&gcp, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    run.ok();
    assert!(run.all().contains(&format!("holds key {first}, which is inactive")), "{}", run.all());
    assert!(run.all().contains("the dead key is deleted before the new one is minted"), "ten keys leave no room: {}", run.all());
    let held = world.load_gcp_credentials_with_prefect(&block_name)["private_key_id"].as_str().unwrap().to_owned();
    let keys = project.user_keys(&email).await;
    assert_eq!(keys.len(), 10, "{keys:?}");
    assert!(!keys.iter().any(|(id, _)| *id == first), "the expired key went");
    assert!(keys.contains(&(held, false)) && keys.contains(&(own[0].clone(), true)), "the new key and the user's disabled one: {keys:?}");
    let writes = project.writes_since(mark).await;
    assert_eq!(writes.iter().filter(|w| w.ends_with("keys.delete")).count(), 1, "one key deleted: {writes:?}");
    let (mark, marks) = (project.mark().await, world.marks().await);
    assert!(world.run_gcp(&gcp, &world.args(CREATE_V2)).ok().stdout.contains("Nothing to change"));
    assert_eq!(project.writes_since(mark).await, Vec::<String>::new());
    world.assert_no_writes_since(marks).await;
    gcp.fake.assert_no_violations(project).await;
}

#[tokio::test]
async fn ten_keys_stop_the_plan_before_any_write_and_an_organization_policy_gets_its_own_error() {
    let world = World::new("crq").await;
    let gcp = GcpWorld::new("crq").await;
    let project = &gcp.project;
    let email = project.seed_service_account("prefect-cloud-run", None).await;
    let keys = project.seed_keys(&email, 10).await;
    let run = world.run_gcp(&gcp, &world.args(CREATE_V2));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.all().contains("already has 10 keys") && run.all().contains(&keys[0]), "{}", run.all());
    assert!(run.all().contains("gcloud iam service-accounts keys delete"), "{}", run.all());
    assert_eq!(project.writes_since(0).await, Vec::<String>::new(), "nothing was written");
    assert!(world.work_pool().await.is_none());

    let world = World::new("crq").await;
    let gcp = GcpWorld::new("crq").await;
    gcp.project.faults(json!({"key_creation_disabled": true})).await;
    let run = world.run_gcp(&gcp, &world.args(CREATE_V2));
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.all().contains("an organization policy forbids service account keys") && run.all().contains("constraints/iam.disableServiceAccountKeyCreation"),
        "{}",
        run.all()
    );
    assert!(world.work_pool().await.is_none() && world.gcp_block().await.is_none(), "no pool without its credentials");
    gcp.fake.assert_no_violations(&gcp.project).await;
}

#[tokio::test]
async fn an_etag_race_an_api_still_enabling_a_new_account_not_yet_visible_and_throttling_are_waited_out() {
    let world = World::new("crr").await;
    let gcp = GcpWorld::new("crr").await;
    let project = &gcp.project;
    project
        .faults(json!({"etag_race": 1, "operation_polls": 4, "service_disabled_after_enable": 2, "service_account_invisible": 2,
            "throttle": {"iam\\.projects\\.serviceAccounts\\.get": 2}}))
        .await;
    world.run_gcp(&gcp, &world.args(CREATE_V2)).ok();
    let email = project.email("prefect-cloud-run");
    assert!(project.members("roles/viewer").await.contains(&"user:other@example.com".to_owned()), "the concurrent writer's binding is kept");
    assert!(project.members("roles/run.developer").await.contains(&format!("serviceAccount:{email}")));
    let statuses: Vec<u16> = project.calls().await.iter().map(|c| c.status).collect();
    for status in [409, 429] {
        assert!(statuses.contains(&status), "the fake answered {status} at least once: {statuses:?}");
    }
    assert_eq!(project.user_keys(&email).await.len(), 1);
    gcp.fake.assert_no_violations(project).await;
}

#[tokio::test]
async fn the_project_flag_wins_and_a_missing_project_missing_credentials_or_unknown_project_are_named() {
    let world = World::new("crp").await;
    let gcp = GcpWorld::new("crp").await;
    let chosen = gcp.fake.project("crp").await;
    let run = world.run_gcp(&gcp, &[&world.args(CREATE_V2)[..], &["--project", &chosen.id]].concat());
    run.ok();
    assert!(run.all().contains(&format!("Google Cloud project {}, region us-central1", chosen.id)), "{}", run.all());
    assert!(chosen.state().await["serviceAccounts"].get(chosen.email("prefect-cloud-run")).is_some(), "made in the project asked for");
    assert_eq!(gcp.project.writes_since(0).await, Vec::<String>::new(), "nothing in gcloud's default project");

    let world = World::new("crp").await;
    gcp.write_gcloud_config(None, None);
    let run = world.run_gcp(&gcp, &world.args(CREATE_V2));
    assert_eq!(run.code, 1);
    assert!(run.all().contains("Google Cloud project: none is set") && run.all().contains("--project"), "{}", run.all());

    let gcp = GcpWorld::new("crp").await.without_credentials();
    let run = world.run_gcp(&gcp, &world.args(CREATE_V2));
    assert_eq!(run.code, 1);
    assert!(run.all().contains("gcloud auth application-default login") && run.all().contains("GOOGLE_APPLICATION_CREDENTIALS"), "{}", run.all());
    assert!(gcp.project.calls().await.is_empty(), "no call without credentials");

    let gcp = GcpWorld::new("crp").await;
    let run = world.run_gcp(&gcp, &[&world.args(CREATE_V2)[..], &["--project", "no-such-project-1"]].concat());
    assert_eq!(run.code, 1);
    assert!(run.all().contains("Google Cloud project 'no-such-project-1' (from --project): does not exist, or the credentials may not see it"), "{}", run.all());
    assert!(world.work_pool().await.is_none());
}

#[tokio::test]
async fn dry_run_and_plan_write_nothing_and_name_the_project() {
    let world = World::new("crd").await;
    let gcp = GcpWorld::new("crd").await;
    let project = &gcp.project;
    let marks = world.marks().await;
    let dry = world.run_gcp(&gcp, &[&world.args(CREATE_V2)[..], &["--dry-run"]].concat());
    dry.ok();
    assert!(dry.stdout.contains("Plan: 8 to create, 1 to update") || dry.stdout.contains("to create"), "{}", dry.all());
    let markdown = world.run_gcp(&gcp, &["plan", "--type", "cloud-run:push", &world.pool, "--output", "markdown"]);
    markdown.ok();
    assert!(markdown.stdout.contains(&format!("Google Cloud project {}, region us-central1", project.id)), "{}", markdown.stdout);
    let json = world.run_gcp(&gcp, &["plan", "--type", "cloud-run:push", &world.pool, "--output", "json"]);
    let document: Value = serde_json::from_str(&json.ok().stdout).unwrap();
    assert_eq!(document["targets"], json!([{"cloud": "gcp", "project": project.id, "region": "us-central1"}]));
    let kinds: Vec<&str> = document["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    for kind in ["gcp.services", "gcp.artifact_repository", "gcp.service_account", "gcp.project_roles", "gcp.service_account_key"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    assert_eq!(project.writes_since(0).await, Vec::<String>::new());
    world.assert_no_writes_since(marks).await;
    gcp.fake.assert_no_violations(project).await;
}

#[tokio::test]
async fn without_adc_an_installed_gcloud_gives_the_token_and_dockers_credential_helper() {
    let world = World::new("crg").await;
    let gcp = GcpWorld::new("crg").await.with_gcloud().without_credentials();
    let run = world.run_gcp(&gcp, &world.args(CREATE_V2));
    run.ok();
    let calls = gcp.gcloud_calls();
    assert!(calls.iter().any(|c| c["argv"].as_array().is_some_and(|a| a.first() == Some(&json!("auth")) && a.get(1) == Some(&json!("print-access-token")))), "{calls:?}");
    let docker: Value = serde_json::from_str(&std::fs::read_to_string(world.home.path().join(".docker/config.json")).unwrap()).unwrap();
    assert_eq!(docker["credHelpers"]["us-central1-docker.pkg.dev"], "gcloud");
    assert!(run.all().contains("through docker-credential-gcloud"), "{}", run.all());
    gcp.fake.assert_no_violations(&gcp.project).await;
}

#[tokio::test]
async fn every_cloud_run_type_shares_one_project_and_a_teardown_keeps_what_another_pool_uses() {
    let world = World::new("crh").await;
    let gcp = GcpWorld::new("crh").await;
    let email = gcp.project.email("prefect-cloud-run");
    let pools: Vec<(String, &str)> = ["cloud-run", "cloud-run:push", "cloud-run-v2"].iter().map(|t| (unique("crh"), *t)).collect();
    for (pool, pool_type) in &pools {
        world.run_gcp(&gcp, &["work-pool", "create", pool, "--type", pool_type, "--provision-infra", "--yes"]).ok();
        let created = world.prefect_get(&format!("/work_pools/{pool}")).await.unwrap();
        assert_eq!(created["type"], *pool_type);
        let properties = &created["base_job_template"]["variables"]["properties"];
        assert_eq!(properties["region"]["default"], "us-central1", "{pool_type}");
        assert_eq!(properties["service_account_name"]["default"], email.as_str(), "{pool_type}");
        assert!(properties["credentials"]["default"]["$ref"]["block_document_id"].is_string(), "{pool_type}");
        let configuration = &created["base_job_template"]["job_configuration"];
        assert!(configuration.as_object().is_some_and(|c| c.contains_key("region")), "the worker's own template: {configuration}");
    }
    // One account and repository for all; each pool's block holds a key of its own.
    let keys = gcp.project.user_keys(&email).await;
    assert_eq!(keys.len(), 3, "{keys:?}");

    // The first pool's teardown takes its pool, block and key, and keeps what the others use.
    let (first, _) = &pools[0];
    let run = world.run_gcp(&gcp, &["work-pool", "deprovision", first, "--yes"]);
    run.ok();
    assert!(run.all().contains(&format!("in use by pool '{}'", pools[1].0)), "{}", run.all());
    assert_eq!(gcp.project.user_keys(&email).await.len(), 2);
    assert!(gcp.project.repository_labels("us-central1", "prefect-images").await.is_some());
    assert!(gcp.project.members("roles/run.developer").await.contains(&format!("serviceAccount:{email}")));
    gcp.fake.assert_no_violations(&gcp.project).await;
}

#[tokio::test]
async fn killed_after_any_write_a_rerun_converges_with_no_orphan_key() {
    let clean = World::new("crc").await;
    let clean_gcp = GcpWorld::new("crc").await;
    clean.run_gcp(&clean_gcp, &clean.args(CREATE_V2)).ok();
    let expected = end_state(&clean, &clean_gcp.project).await;
    let succeeded = |calls: Vec<support::Call>| calls.iter().filter(|c| c.write && c.status < 400).count();
    let total = clean_gcp.project.calls().await.iter().filter(|c| c.write && c.status < 400).count() + succeeded(clean.prefect.calls().await);
    println!("killed after each of {total} writes");

    let mut orphans_cleaned = 0;
    for k in 1..=total {
        let world = World::new("crc").await;
        let group = unique("crc-group");
        let gcp = GcpWorld::new("crc").await.through_proxy(&world.sandbox, Some(&group)).await;
        let prefect = Channel::open_in(&world.sandbox, &world.sandbox.prefect, Some(&group)).await;
        hold_group_after(&world.sandbox, &group, k).await;
        let mut command = world.gcp_command(&gcp, &world.args(CREATE_V2));
        command.env("PREFECT_API_URL", format!("{}/api", prefect.url()));
        kill_after_writes(&mut command, &[gcp.channel.as_ref().unwrap(), &prefect], k).await;

        let direct = GcpWorld::on(gcp.project.clone()).await;
        let rerun = world.run_gcp(&direct, &world.args(CREATE_V2));
        assert_eq!(rerun.code, 0, "killed after write {k}, the re-run failed:\n{}", rerun.all());
        if rerun.all().contains("minted by an interrupted run") {
            orphans_cleaned += 1;
        }
        assert_eq!(end_state(&world, &gcp.project).await, expected, "killed after write {k}");
        let (mark, marks) = (gcp.project.mark().await, world.marks().await);
        assert!(world.run_gcp(&direct, &world.args(CREATE_V2)).ok().stdout.contains("Nothing to change"), "killed after write {k}");
        assert_eq!(gcp.project.writes_since(mark).await, Vec::<String>::new(), "killed after write {k}");
        world.assert_no_writes_since(marks).await;
    }
    assert!(orphans_cleaned > 0, "some crash fell between minting a key and storing it, and its key was cleaned up");
}

/// A provisioned world whose block's key was disabled since, and that key's id.
async fn with_disabled_key(prefix: &str) -> (World, GcpWorld, String) {
    let (world, gcp, email, dead) = provisioned(prefix).await;
    gcp.project.disable_key(&email, &dead).await;
    (world, gcp, dead)
}

#[tokio::test]
async fn killed_after_any_write_of_a_key_replacement_a_rerun_deletes_the_disabled_key_and_leaves_one() {
    let (clean, clean_gcp, _) = with_disabled_key("crd").await;
    let succeeded = |calls: Vec<support::Call>, from: usize| calls.iter().skip(from).filter(|c| c.write && c.status < 400).count();
    let (gcp_from, prefect_from) = (clean_gcp.project.calls().await.len(), clean.marks().await.1);
    clean.run_gcp(&clean_gcp, &clean.args(CREATE_V2)).ok();
    let gcp_writes = clean_gcp.project.calls().await.iter().skip(gcp_from).filter(|c| c.write && c.status < 400).count();
    let total = gcp_writes + succeeded(clean.prefect.calls().await, prefect_from);
    println!("killed after each of {total} writes");

    let mut dead_key_cleaned = 0;
    for k in 1..=total {
        let (world, direct, dead) = with_disabled_key("crd").await;
        let group = unique("crd-group");
        let gcp = GcpWorld::on(direct.project.clone()).await.through_proxy(&world.sandbox, Some(&group)).await;
        let prefect = Channel::open_in(&world.sandbox, &world.sandbox.prefect, Some(&group)).await;
        hold_group_after(&world.sandbox, &group, k).await;
        let mut command = world.gcp_command(&gcp, &world.args(CREATE_V2));
        command.env("PREFECT_API_URL", format!("{}/api", prefect.url()));
        kill_after_writes(&mut command, &[gcp.channel.as_ref().unwrap(), &prefect], k).await;

        let rerun = world.run_gcp(&direct, &world.args(CREATE_V2));
        assert_eq!(rerun.code, 0, "killed after write {k}, the re-run failed:\n{}", rerun.all());
        if rerun.all().contains(&format!("deletes dead key {dead}, which an interrupted run replaced")) {
            dead_key_cleaned += 1;
        }
        let email = direct.project.email("prefect-cloud-run");
        let held = world.load_gcp_credentials_with_prefect(&format!("{}-push-pool-credentials", world.pool))["private_key_id"].as_str().unwrap().to_owned();
        assert_eq!(direct.project.user_keys(&email).await, [(held, false)], "killed after write {k}: one key, the block's");
        let description = direct.project.state().await["serviceAccounts"][&email]["description"].as_str().unwrap().to_owned();
        assert!(!description.contains("pending"), "killed after write {k}: the mark is cleared: {description}");
        let (mark, marks) = (direct.project.mark().await, world.marks().await);
        assert!(world.run_gcp(&direct, &world.args(CREATE_V2)).ok().stdout.contains("Nothing to change"), "killed after write {k}");
        assert_eq!(direct.project.writes_since(mark).await, Vec::<String>::new(), "killed after write {k}");
        world.assert_no_writes_since(marks).await;
    }
    assert!(dead_key_cleaned > 0, "some crash fell between the block write and the dead key's deletion, and the re-run deleted it");
}

/// The IAM permission each Google method pushpool calls needs (Google's permission reference;
/// an operation is polled with the permission of the call that started it).
fn permission(method: &str) -> &'static str {
    match method {
        "cloudresourcemanager.projects.get" => "resourcemanager.projects.get",
        "cloudresourcemanager.projects.getIamPolicy" => "resourcemanager.projects.getIamPolicy",
        "cloudresourcemanager.projects.setIamPolicy" => "resourcemanager.projects.setIamPolicy",
        "serviceusage.services.batchGet" => "serviceusage.services.get",
        "serviceusage.services.batchEnable" => "serviceusage.services.enable",
        "serviceusage.operations.get" => "serviceusage.operations.get",
        "iam.projects.serviceAccounts.get" => "iam.serviceAccounts.get",
        "iam.projects.serviceAccounts.create" => "iam.serviceAccounts.create",
        "iam.projects.serviceAccounts.patch" => "iam.serviceAccounts.update",
        "iam.projects.serviceAccounts.delete" => "iam.serviceAccounts.delete",
        "iam.projects.serviceAccounts.keys.list" => "iam.serviceAccountKeys.list",
        "iam.projects.serviceAccounts.keys.get" => "iam.serviceAccountKeys.get",
        "iam.projects.serviceAccounts.keys.create" => "iam.serviceAccountKeys.create",
        "iam.projects.serviceAccounts.keys.delete" => "iam.serviceAccountKeys.delete",
        "artifactregistry.projects.locations.repositories.get" => "artifactregistry.repositories.get",
        "artifactregistry.projects.locations.repositories.create" => "artifactregistry.repositories.create",
        "artifactregistry.projects.locations.repositories.delete" => "artifactregistry.repositories.delete",
        "artifactregistry.projects.locations.repositories.dockerImages.list" => "artifactregistry.dockerimages.list",
        "artifactregistry.projects.locations.operations.get" => "artifactregistry.repositories.get",
        other => panic!("no permission known for {other}: add it here and to policies/gcp/"),
    }
}

fn role_permissions(file: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/gcp").join(file);
    let role: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    role["includedPermissions"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_operator_roles_grant_every_method_a_plan_an_apply_and_a_teardown_call() {
    let world = World::new("cro").await;
    let gcp = GcpWorld::new("cro").await;
    let project = &gcp.project;
    let methods = |calls: Vec<support::gcp::GcpCall>| calls.into_iter().map(|c| c.name()).collect::<Vec<_>>();
    let mark = project.mark().await;
    world.run_gcp(&gcp, &[&world.args(CREATE_V2)[..], &["--dry-run"]].concat()).ok();
    let plan = methods(project.calls().await.split_off(mark));
    let mark = project.mark().await;
    world.run_gcp(&gcp, &world.args(CREATE_V2)).ok();
    let apply = methods(project.calls().await.split_off(mark));
    let mark = project.mark().await;
    world.run_gcp(&gcp, &["work-pool", "deprovision", &world.pool, "--dry-run"]).ok();
    let teardown_plan = methods(project.calls().await.split_off(mark));
    let mark = project.mark().await;
    world.run_gcp(&gcp, &["work-pool", "deprovision", &world.pool, "--yes"]).ok();
    let teardown = methods(project.calls().await.split_off(mark));
    for (file, calls) in [("operator-plan.json", &plan), ("operator-plan.json", &teardown_plan), ("operator-apply.json", &apply), ("operator-teardown.json", &teardown)] {
        let granted = role_permissions(file);
        assert!(!calls.is_empty());
        for method in calls {
            assert!(granted.contains(&permission(method).to_owned()), "{file} lacks {} for {method}", permission(method));
        }
    }
    assert!(teardown.iter().any(|m| m.ends_with("serviceAccounts.delete")), "{teardown:?}");
}

#[tokio::test]
async fn a_provisioning_killed_before_the_pool_existed_is_torn_down_without_its_type() {
    let world = World::new("crz").await;
    let group = unique("crz-group");
    let gcp = GcpWorld::new("crz").await.through_proxy(&world.sandbox, Some(&group)).await;
    let start = end_state(&world, &gcp.project).await;
    let prefect = Channel::open_in(&world.sandbox, &world.sandbox.prefect, Some(&group)).await;
    // The apply marker, the type record, then the first cloud writes: killed after two of those.
    hold_group_after(&world.sandbox, &group, 4).await;
    let mut command = world.gcp_command(&gcp, &world.args(CREATE_V2));
    command.env("PREFECT_API_URL", format!("{}/api", prefect.url()));
    kill_after_writes(&mut command, &[gcp.channel.as_ref().unwrap(), &prefect], 4).await;
    assert!(world.work_pool().await.is_none() && world.gcp_block().await.is_none());
    assert!(!gcp.project.writes_since(0).await.is_empty(), "something was built in the project");

    let direct = GcpWorld::on(gcp.project.clone()).await;
    let run = world.run_gcp(&direct, &["work-pool", "deprovision", &world.pool, "--yes"]);
    run.ok();
    let mut end = end_state(&world, &gcp.project).await;
    end["services"] = start["services"].clone();
    assert_eq!(end, start, "what the killed run built is gone:\n{}", run.all());
    // The record went last, with the rest: a second teardown says nothing is left.
    let marks = world.marks().await;
    let again = world.run_gcp(&direct, &["work-pool", "deprovision", &world.pool, "--yes"]);
    again.ok();
    assert!(again.stdout.contains("Nothing to delete") && !again.all().contains("--type"), "{}", again.all());
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn a_pool_made_in_another_project_and_region_is_rerun_and_torn_down_there() {
    let world = World::new("crplace").await;
    let gcp = GcpWorld::new("crplace").await;
    let home = &gcp.project;
    let mut create = world.args(CREATE_V2);
    create.extend(["--region", "europe-west1"]);
    world.run_gcp(&gcp, &create).ok();
    assert!(home.repository_labels("europe-west1", "prefect-images").await.is_some());

    // gcloud now points at another project and region: the pool stays where it is.
    let other = gcp.fake.project("crother").await;
    gcp.write_gcloud_config(Some(&other.id), Some("asia-east1"));
    let (mark, marks) = (home.mark().await, world.marks().await);
    let rerun = world.run_gcp(&gcp, &["work-pool", "provision-infra", &world.pool, "--yes"]);
    rerun.ok();
    assert!(rerun.stdout.contains("Nothing to change"), "{}", rerun.all());
    assert_eq!(home.writes_since(mark).await, Vec::<String>::new());
    world.assert_no_writes_since(marks).await;
    assert!(other.calls().await.is_empty(), "gcloud's project is not the pool's: not one call");

    let moved = world.run_gcp(&gcp, &["work-pool", "provision-infra", &world.pool, "--project", &other.id, "--yes"]);
    assert_eq!(moved.code, 1, "{}", moved.all());
    assert!(moved.stderr.contains(&format!("project {}, region europe-west1 (from the pool's record)", home.id)), "{}", moved.stderr);
    assert!(moved.stderr.contains(&format!("--project {} names another place", other.id)), "{}", moved.stderr);

    let dry = world.run_gcp(&gcp, &["work-pool", "deprovision", &world.pool, "--dry-run"]);
    assert!(dry.ok().stdout.contains(&format!("Google Cloud project {}, region europe-west1 (from the pool's record)", home.id)), "{}", dry.stdout);
    // As a pool Prefect's own CLI made: no record; its service account and region say where.
    world.forget_record().await;
    let down = world.run_gcp(&gcp, &["work-pool", "deprovision", &world.pool, "--yes"]);
    down.ok();
    assert!(down.stdout.contains(&format!("Google Cloud project {}, region europe-west1 (from the pool's job variables)", home.id)), "{}", down.stdout);
    assert!(home.repository_labels("europe-west1", "prefect-images").await.is_none(), "torn down where it lives");
    assert!(other.calls().await.is_empty(), "gcloud's project untouched");
    gcp.fake.assert_no_violations(home).await;
}

/// Names Google refuses are refused by the plan before any call to Google, with the flag
/// that names the resource otherwise.
#[tokio::test]
async fn names_google_refuses_are_refused_before_any_call() {
    let world = World::new("crn").await;
    let gcp = GcpWorld::new("crn").await;
    let cases = [
        ("repository", "Prefect_Images", "Artifact Registry repository id 'Prefect_Images' (resource 'repository')"),
        ("service_account", "prefect_run", "service account id 'prefect_run' (resource 'service_account')"),
    ];
    for (id, name, expected) in cases {
        let set = format!("{id}={name}");
        let run = world.run_gcp(&gcp, &[&world.args(CREATE_V2)[..], &["--set", &set]].concat());
        assert_eq!(run.code, 1, "{}", run.all());
        assert!(run.stderr.contains(expected) && run.stderr.contains(&format!("--set {id}=<name>")), "{}", run.stderr);
        assert!(gcp.project.calls().await.is_empty(), "no call to Google");
    }
    assert!(world.work_pool().await.is_none());
}
