//! `--parallelism N`: at most N requests in flight per service endpoint, measured by the counting
//! proxy (each call's start and end on its own clock) under a pools file of several pools,
//! every call slowed down so that a run without the bound overlaps far more.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::{Channel, World, http};

/// The most calls of `channel` in flight at once at one endpoint: AWS's calls grouped by the
/// service and region they are signed for (the endpoint AWS serves them from; the sandbox serves
/// them all from one address), Prefect's all at one. +1 at each start, -1 at each end, ends
/// first at equal times (a call that ends as another starts never overlapped it).
async fn peak_in_flight(world: &World, channel: &Channel) -> usize {
    let url = format!("{}/channels/{}/calls", world.sandbox.proxy, channel.port);
    let calls: Vec<Value> = http().get(url).send().await.unwrap().json().await.unwrap();
    let mut endpoints: BTreeMap<(String, String), Vec<(f64, i32)>> = BTreeMap::new();
    for call in &calls {
        let start = call["start"].as_f64().expect("the proxy records each call's start");
        let end = call["end"].as_f64().expect("every call has ended once the run has");
        let endpoint = (call["service"].as_str().unwrap_or_default().to_owned(), call["region"].as_str().unwrap_or_default().to_owned());
        endpoints.entry(endpoint).or_default().extend([(start, 1), (end, -1)]);
    }
    let peak = |mut events: Vec<(f64, i32)>| {
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (mut now, mut peak) = (0i32, 0i32);
        for (_, step) in events {
            now += step;
            peak = peak.max(now);
        }
        usize::try_from(peak).unwrap_or_default()
    };
    endpoints.into_values().map(peak).max().unwrap_or_default()
}

/// A world with a pools file of `pools` ecs:push pools, every AWS and Prefect call 40 ms slower.
async fn slow_fleet(pools: usize) -> (World, String) {
    let world = World::new("par").await;
    let slow = json!({"*": {"kind": "latency", "ms": 40}});
    world.aws.set_faults(slow.clone()).await;
    world.prefect.set_faults(slow).await;
    let path = world.ecs_pools_file(&world.pool_names(pools));
    (world, path)
}

#[tokio::test]
async fn a_plan_of_two_pools_keeps_at_most_n_requests_in_flight_per_endpoint() {
    // Two pools read IAM by name (a user and a policy each, at once); more would read the
    // account's inventory in one call (tests/iam_inventory.rs).
    let (world, pools) = slow_fleet(2).await;
    world.run(&["--parallelism", "3", "plan", "--file", &pools]).ok();
    let (aws, prefect) = (peak_in_flight(&world, &world.aws).await, peak_in_flight(&world, &world.prefect).await);
    assert!(aws <= 3 && prefect <= 3, "at most 3 in flight per endpoint, saw AWS {aws} and Prefect {prefect}");
    assert_eq!(aws, 3, "the reads still run side by side, up to the bound");

    // The same plan with the default bound overlaps more: the bound above was the flag's doing.
    let (world, pools) = slow_fleet(2).await;
    world.run(&["plan", "--file", &pools]).ok();
    let unbounded = peak_in_flight(&world, &world.aws).await;
    assert!(unbounded > 3 && unbounded <= 10, "the default bound is 10, saw {unbounded}");
}

#[tokio::test]
async fn a_pools_file_reads_its_pools_records_and_blocks_in_one_filter_read_each() {
    let (world, pools) = slow_fleet(4).await;
    world.aws.page(0).await;
    world.prefect.page(0).await;
    world.run(&["plan", "--file", &pools]).ok();
    let calls = world.prefect.calls().await;
    let count = |method: &str, part: &str| calls.iter().filter(|c| c.method == method && c.path.contains(part)).count();
    assert_eq!(count("GET", "/work_pools/"), 0, "no read per pool: {calls:?}");
    assert_eq!(count("GET", "/variables/name/"), 0, "no record read per pool: {calls:?}");
    // A page with every pool that exists, and an empty page that ends the read.
    assert!((1..=2).contains(&count("POST", "/work_pools/filter")), "{calls:?}");
    assert_eq!(count("GET", "/block_documents/name/"), 0, "no block read per pool: {calls:?}");
    assert!((1..=2).contains(&count("POST", "/block_documents/filter")), "{calls:?}");
    // The new blocks' type and its newest schema are read once, not once per pool.
    assert_eq!(count("GET", "/block_types/slug/aws-credentials"), 1, "{calls:?}");
    assert!((1..=2).contains(&count("POST", "/block_schemas/filter")), "{calls:?}");
}
