//! Engine tests with an in-memory node kind: ordering, concurrency, partial failure.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;

use super::*;
use crate::error::{Error, Result};

/// A node that sleeps, then records when it ran; `exists` makes it reused, `fails` makes
/// its apply fail. It names its sleep as a wait (in a plan's reads, where nobody watches, too).
struct Fake {
    id: &'static str,
    exists: bool,
    fails: bool,
    log: Log,
}

impl Node for Fake {
    fn label(&self) -> &'static str {
        "fake"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            waiting(format!("observing {}", self.id));
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = upstream;
            let attrs = Attrs::new().with("name", self.id);
            Ok(if self.exists { Observation::reuse("exists", attrs) } else { Observation::create("missing", attrs) })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let start = Instant::now();
            waiting(format!("waiting for the fake cloud to make {}", self.id));
            tokio::time::sleep(Duration::from_millis(60)).await;
            self.log.lock().unwrap().push((self.id, start, Instant::now()));
            if self.fails {
                return Err(Error::remote(self.id, "injected failure"));
            }
            // Every dependency's attributes are visible.
            let seen: Vec<String> = inputs.attrs.keys().cloned().collect();
            Ok(Attrs::new().with("seen", seen.join(",")))
        }
        .boxed()
    }

    /// Exists → delete, unless `teardown` names it; missing → gone.
    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            Ok(match (self.exists, teardown.in_use([self.id])) {
                (false, _) => Observation::gone("missing"),
                (true, Some(used)) => Observation::keep(used, Attrs::new()),
                (true, None) => Observation::delete("exists", Attrs::new()),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let start = Instant::now();
            tokio::time::sleep(Duration::from_millis(60)).await;
            self.log.lock().unwrap().push((self.id, start, Instant::now()));
            if self.fails { Err(Error::remote(self.id, "injected failure")) } else { Ok(()) }
        }
        .boxed()
    }
}

struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn started(&self, info: &NodeInfo) {
        self.0.lock().unwrap().push(format!("start {}", info.id));
    }
    fn waiting(&self, info: &NodeInfo, why: &str) {
        self.0.lock().unwrap().push(format!("wait {}: {why}", info.id));
    }
    fn finished(&self, info: &NodeInfo, result: std::result::Result<Duration, &Error>) {
        let status = if result.is_ok() { "ok" } else { "err" };
        self.0.lock().unwrap().push(format!("{status} {}", info.id));
    }
}

type Log = Arc<Mutex<Vec<(&'static str, Instant, Instant)>>>;

fn graph(spec: &[(&'static str, &[&str], bool, bool)], log: &Log) -> Graph {
    graph_of_pools(spec, &[], log)
}

/// [`graph`] whose nodes serve the pools `pools` lists for them (a node not listed serves
/// "pool").
fn graph_of_pools(spec: &[(&'static str, &[&str], bool, bool)], pools: &[(&str, &[&str])], log: &Log) -> Graph {
    let entries = spec
        .iter()
        .map(|(id, after, exists, fails)| {
            let mut info = info(id, after);
            if let Some((_, served)) = pools.iter().find(|(node, _)| node == id) {
                info.pools = served.iter().map(|p| p.to_string()).collect();
            }
            Entry::new(info, Arc::new(Fake { id, exists: *exists, fails: *fails, log: log.clone() }), BTreeMap::new())
        })
        .collect();
    Graph::new(entries).unwrap()
}

fn info(id: &str, after: &[&str]) -> NodeInfo {
    NodeInfo {
        id: id.to_string(),
        kind: "test.fake".into(),
        label: "fake".into(),
        name: id.to_string(),
        says: String::new(),
        after: after.iter().map(|s| s.to_string()).collect(),
        pools: vec!["pool".into()],
        scope: String::new(),
    }
}

#[test]
fn orders_nodes_after_their_dependencies_and_rejects_cycles() {
    let log = Log::default();
    let g = graph(&[("c", &["b"], false, false), ("b", &["a"], false, false), ("a", &[], false, false)], &log);
    let order: Vec<&str> = g.entries().iter().map(|e| e.info.id.as_str()).collect();
    assert_eq!(order, ["a", "b", "c"]);

    let cyclic = [("x", ["y"]), ("y", ["x"])]
        .into_iter()
        .map(|(id, after)| {
            let node: NodeRef = Arc::new(Fake { id, exists: false, fails: false, log: log.clone() });
            Entry::new(info(id, &after), node, BTreeMap::new())
        })
        .collect();
    let error = Graph::new(cyclic).err().expect("a cycle is refused");
    assert!(error.cause.contains("cycle"), "{error}");
}

#[tokio::test]
async fn observes_all_nodes_concurrently() {
    let log = Log::default();
    let g = graph(&[("a", &[], false, false), ("b", &["a"], true, false), ("c", &["b"], false, false)], &log);
    let start = Instant::now();
    let plan = plan(&g).await.unwrap();
    // Three 50 ms reads in a chain of dependencies still take one read's time.
    assert!(start.elapsed() < Duration::from_millis(140), "{:?}", start.elapsed());
    assert_eq!(plan.count(Action::Create), 2);
    assert_eq!(plan.count(Action::Reuse), 1);
    assert!(!plan.is_empty());
}

#[tokio::test]
async fn applies_independent_branches_in_parallel_and_dependents_after() {
    let log = Log::default();
    // a and b are independent; c needs both; d is reused.
    let g = graph(&[("a", &[], false, false), ("b", &[], false, false), ("d", &[], true, false), ("c", &["a", "b", "d"], false, false)], &log);
    let plan = plan(&g).await.unwrap();
    let recorder = Recorder(Mutex::new(Vec::new()));
    let applied = apply(&g, &plan, &recorder).await;
    assert!(applied.failures.is_empty());
    assert_eq!(applied.written.len(), 3);
    let log = log.lock().unwrap();
    let span = |id: &str| log.iter().find(|(n, ..)| *n == id).map(|(_, s, e)| (*s, *e)).unwrap();
    let (a, b, c) = (span("a"), span("b"), span("c"));
    assert!(a.0 < b.1 && b.0 < a.1, "a and b overlap in time");
    assert!(c.0 >= a.1 && c.0 >= b.1, "c starts after a and b end");
    assert!(log.iter().all(|(n, ..)| *n != "d"), "a reused node is not applied");
    assert_eq!(applied.attrs["c"].str("seen"), Some("a,b,d"));
    // Each step's wait is named on its own line, between its start and its end; the plan's are not.
    let events = recorder.0.lock().unwrap();
    for id in ["a", "b", "c"] {
        let at = |event: String| events.iter().position(|e| *e == event).unwrap_or_else(|| panic!("{event} in {events:?}"));
        let wait = at(format!("wait {id}: waiting for the fake cloud to make {id}"));
        assert!(at(format!("start {id}")) < wait && wait < at(format!("ok {id}")), "{events:?}");
    }
    assert!(!events.iter().any(|e| e.contains("observing")), "{events:?}");
}

#[tokio::test]
async fn failure_stops_new_work_and_reports_what_exists() {
    let log = Log::default();
    // One pool: a fails; b runs beside it and finishes; c depends on a and never starts; d,
    // after b2 after b, depends on no failed node but serves only the failed pool: it never
    // starts either (b2 may start, if b ended before a failed).
    let g = graph(&[("a", &[], false, true), ("b", &[], false, false), ("c", &["a"], false, false), ("b2", &["b"], false, false), ("d", &["b2"], false, false)], &log);
    let plan = plan(&g).await.unwrap();
    let recorder = Recorder(Mutex::new(Vec::new()));
    let applied = apply(&g, &plan, &recorder).await;
    let [(failed, error)] = applied.failures.as_slice() else { panic!("one failure: {:?}", applied.failures) };
    assert_eq!(failed.id, "a");
    assert_eq!(error.cause, "injected failure");
    assert_eq!(applied.written[0], "b");
    assert!(applied.written.iter().all(|id| id == "b" || id == "b2"), "{:?}", applied.written);
    let not_started: Vec<&str> = applied.not_started.iter().map(|i| i.id.as_str()).collect();
    assert!(not_started.contains(&"c") && not_started.contains(&"d"), "{not_started:?}");
    let events = recorder.0.lock().unwrap();
    assert!(events.contains(&"err a".to_string()) && events.contains(&"ok b".to_string()));
    assert!(!events.iter().any(|e| e.ends_with(" c") || e.ends_with(" d")), "{events:?}");
}

#[tokio::test]
async fn a_failed_pool_stops_alone_and_shared_nodes_go_on_for_the_others() {
    let log = Log::default();
    // Pools x and y share s and s2 (s2 after s). x's x1 fails at once; x2 depends on it; x3
    // waits for s2, which ends after x1 failed. y's y2 waits for s2 and y1; n serves no pool.
    let spec: &[(&'static str, &[&str], bool, bool)] = &[
        ("x1", &[], false, true),
        ("x2", &["x1"], false, false),
        ("s", &[], false, false),
        ("s2", &["s"], false, false),
        ("x3", &["s2"], false, false),
        ("y1", &[], false, false),
        ("y2", &["s2", "y1"], false, false),
        ("n", &["y2"], false, false),
    ];
    let pools: &[(&str, &[&str])] = &[("x1", &["x"]), ("x2", &["x"]), ("x3", &["x"]), ("s", &["x", "y"]), ("s2", &["x", "y"]), ("y1", &["y"]), ("y2", &["y"]), ("n", &[])];
    let g = graph_of_pools(spec, pools, &log);
    let plan = plan(&g).await.unwrap();
    let recorder = Recorder(Mutex::new(Vec::new()));
    let applied = apply(&g, &plan, &recorder).await;
    let failed: Vec<&str> = applied.failures.iter().map(|(info, _)| info.id.as_str()).collect();
    assert_eq!(failed, ["x1"]);
    let mut written = applied.written.clone();
    written.sort();
    assert_eq!(written, ["s", "s2", "y1", "y2"], "the healthy pool and what it shares are applied in full");
    let mut not_started: Vec<&str> = applied.not_started.iter().map(|i| i.id.as_str()).collect();
    not_started.sort_unstable();
    assert_eq!(not_started, ["n", "x2", "x3"], "the failed pool's dependents and its later work wait; so does a node of no pool");
    assert_eq!(applied.attrs["y2"].str("seen"), Some("s2,y1"));
}

#[tokio::test]
async fn teardown_deletes_dependents_first_and_keeps_what_is_in_use() {
    let log = Log::default();
    // vpc ← subnet ← pool, vpc ← group; "shared" is named elsewhere; "missing" does not exist.
    let g = graph(
        &[
            ("vpc", &[], true, false),
            ("subnet", &["vpc"], true, false),
            ("group", &["vpc"], true, false),
            ("shared", &[], true, false),
            ("missing", &[], false, false),
            ("pool", &["subnet", "shared", "missing"], true, false),
        ],
        &log,
    );
    let mut teardown = Teardown::new(false, false);
    teardown.add_references("pool 'other'", &serde_json::json!({"cluster": "shared"}));
    let plan = plan_teardown(&g, &teardown).await.unwrap();
    assert_eq!(plan.goal, Goal::Teardown);
    assert_eq!((plan.count(Action::Delete), plan.count(Action::Keep), plan.count(Action::Gone)), (4, 1, 1));
    assert_eq!(plan.change("shared").unwrap().observed.reason, "in use by pool 'other'");

    let applied = apply(&g, &plan, &Recorder(Mutex::new(Vec::new()))).await;
    assert!(applied.failures.is_empty());
    let log = log.lock().unwrap();
    let span = |id: &str| log.iter().find(|(n, ..)| *n == id).map(|(_, s, e)| (*s, *e)).unwrap();
    let (vpc, subnet, group, pool) = (span("vpc"), span("subnet"), span("group"), span("pool"));
    assert!(subnet.0 >= pool.1, "the subnet goes after the pool that uses it");
    assert!(vpc.0 >= subnet.1 && vpc.0 >= group.1, "the VPC goes last");
    assert!(group.0 < pool.1, "the group, used by nothing, goes at once, beside the pool");
    assert!(log.iter().all(|(n, ..)| *n != "shared" && *n != "missing"));
}

#[tokio::test]
async fn a_failed_delete_keeps_what_it_depends_on() {
    let log = Log::default();
    let g = graph(&[("vpc", &[], true, false), ("subnet", &["vpc"], true, true)], &log);
    let plan = plan_teardown(&g, &Teardown::default()).await.unwrap();
    let applied = apply(&g, &plan, &Recorder(Mutex::new(Vec::new()))).await;
    let failed: Vec<&str> = applied.failures.iter().map(|(info, _)| info.id.as_str()).collect();
    assert_eq!(failed, ["subnet"]);
    assert_eq!(applied.not_started.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["vpc"]);
}

#[tokio::test]
async fn a_failed_teardown_of_one_pool_does_not_stop_the_others() {
    let log = Log::default();
    // Torn down dependents first: x_d, then x_c, then x_b; x_a fails at once, so x_b (which
    // starts after x_a failed, whatever x_c did) waits; y's y_c, then y_b, go through.
    let spec: &[(&'static str, &[&str], bool, bool)] = &[
        ("x_a", &[], true, true),
        ("x_b", &[], true, false),
        ("x_c", &["x_b"], true, false),
        ("x_d", &["x_c"], true, false),
        ("y_b", &[], true, false),
        ("y_c", &["y_b"], true, false),
    ];
    let pools: &[(&str, &[&str])] = &[("x_a", &["x"]), ("x_b", &["x"]), ("x_c", &["x"]), ("x_d", &["x"]), ("y_b", &["y"]), ("y_c", &["y"])];
    let g = graph_of_pools(spec, pools, &log);
    let plan = plan_teardown(&g, &Teardown::default()).await.unwrap();
    let applied = apply(&g, &plan, &Recorder(Mutex::new(Vec::new()))).await;
    let failed: Vec<&str> = applied.failures.iter().map(|(info, _)| info.id.as_str()).collect();
    assert_eq!(failed, ["x_a"]);
    assert!(applied.written.contains(&"y_b".to_owned()) && applied.written.contains(&"y_c".to_owned()), "{:?}", applied.written);
    assert!(applied.not_started.iter().any(|i| i.id == "x_b"), "{:?}", applied.not_started);
    assert!(!applied.written.contains(&"x_b".to_owned()));
}
