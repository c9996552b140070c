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
use support::azure::AzureWorld;

const CREATE: &[&str] = &["work-pool", "create", "{pool}", "--type", "azure-container-instance:push", "--provision-infra", "--yes"];

fn args<'a>(world: &'a World, template: &[&'a str]) -> Vec<&'a str> {
    template.iter().map(|a| if *a == "{pool}" { world.pool.as_str() } else { a }).collect()
}

/// The job variable defaults of the pool's base job template.
async fn defaults(world: &World) -> Value {
    let pool = world.work_pool().await.expect("the pool exists");
    let properties = pool["base_job_template"]["variables"]["properties"].clone();
    properties.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v["default"].clone())).collect()
}

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
    let roles: Vec<String> = subscription["roleAssignments"].as_array().into_iter().flatten().map(|a| a["roleDefinitionId"].as_str().unwrap_or_default().rsplit('/').next().unwrap().to_owned()).collect();
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
    let run = world.run_azure(&azure, &args(&world, CREATE));
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
    let roles: Vec<&str> = subscription["roleAssignments"].as_array().unwrap().iter().map(|a| a["roleDefinitionId"].as_str().unwrap().rsplit('/').next().unwrap()).collect();
    assert!(roles.contains(&"b24988ac-6180-42a0-ab88-20f7382dd24c") && roles.contains(&"7f951dda-4ed3-4680-a7ca-43fe172d538d"), "{roles:?}");

    // The pool names the block, the group, the subscription, the registry and the identity.
    let defaults = defaults(&world).await;
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
