//! Applying a plan: each node starts as soon as everything it depends on is done (for a
//! teardown: everything that depends on it).

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};

use super::attrs::Attrs;
use super::graph::{Graph, NodeInfo};
use super::plan::{Change, Goal, Plan};
use super::upstream::Inputs;
use crate::error::Error;

/// Receives progress as apply goes, for the console.
pub trait Progress: Send + Sync {
    /// A node's create, update or delete started.
    fn started(&self, info: &NodeInfo);
    /// A node's work is waiting for something outside pushpool (a cloud's replication, say):
    /// `why` says what, so that a slow step explains itself instead of looking stuck.
    fn waiting(&self, info: &NodeInfo, why: &str);
    /// A node's create, update or delete ended.
    fn finished(&self, info: &NodeInfo, result: Result<Duration, &Error>);
}

/// The step a node's work runs as, and where its waits are reported: set around each node's
/// work by [`apply`], so that a wait deep in a cloud's client can be named on the step's line.
#[derive(Clone)]
struct Step {
    info: NodeInfo,
    waits: tokio::sync::mpsc::UnboundedSender<(NodeInfo, String)>,
}

tokio::task_local! {
    static STEP: Step;
}

/// Names a wait of the running step on its progress line (`why`: "waiting for Entra ID to
/// replicate application x"). Outside an apply (a plan's reads) nobody is watching a step, and
/// the wait goes unnamed.
pub fn waiting(why: impl Into<String>) {
    let why = why.into();
    let _ = STEP.try_with(|step| {
        // A closed channel means the apply's progress display is done: the wait goes unnamed.
        let _ = step.waits.send((step.info.clone(), why));
    });
}

/// What an apply did: the attributes of every node that is done, and the failures if any.
#[derive(Debug)]
pub struct Applied {
    /// Final attributes of every reused or applied node.
    pub attrs: BTreeMap<String, Attrs>,
    /// The ids of the nodes created or updated, in completion order.
    pub written: Vec<String>,
    /// Every node that failed, and why, in the order they failed. Nodes in flight at a
    /// failure were finished; after it, only the work of pools without a failure went on
    /// (see [`apply`]).
    pub failures: Vec<(NodeInfo, Error)>,
    /// The nodes that were never started because of the failures.
    pub not_started: Vec<NodeInfo>,
}

/// The failures of an apply so far, and the pools they are of ("poisoned"). One pool's
/// refused write must not stop the other ninety-nine of a pools file, nor may it let more of
/// its own pool be built on a state the user has to look at first.
#[derive(Default)]
struct Failures {
    failed: Vec<(NodeInfo, Error)>,
    poisoned: HashSet<String>,
}

impl Failures {
    fn record(&mut self, info: &NodeInfo, error: Error) {
        self.poisoned.extend(info.pools.iter().cloned());
        self.failed.push((info.clone(), error));
    }

    /// Whether work on `info` (its create, update, delete or settling) must not start: after
    /// a failure, when every pool it serves has a failed node. A node serving a healthy pool
    /// too (an account's cluster) goes on for that pool; one serving no pool is held back
    /// after any failure, as nothing says it is unaffected. A single-pool run thus starts
    /// nothing new after its first failure. A node that depends on a failed one needs no rule:
    /// it waits for a node that is never done.
    fn holds_back(&self, info: &NodeInfo) -> bool {
        !self.failed.is_empty() && info.pools.iter().all(|pool| self.poisoned.contains(pool))
    }
}

/// The nodes each node waits for: its dependencies when provisioning; when tearing down, the
/// nodes that depend on it (a subnet goes before its VPC, a pool before its block).
fn waits_for(graph: &Graph, goal: Goal) -> BTreeMap<&str, Vec<&str>> {
    let mut waits: BTreeMap<&str, Vec<&str>> = graph.entries().iter().map(|e| (e.info.id.as_str(), Vec::new())).collect();
    for entry in graph.entries() {
        for dep in &entry.info.after {
            match goal {
                Goal::Provision => waits.entry(entry.info.id.as_str()).or_default().push(dep),
                Goal::Teardown => waits.entry(dep.as_str()).or_default().push(&entry.info.id),
            }
        }
    }
    waits
}

/// What finished in an apply: a node's create, update or delete, or a node's settling.
enum Finished<'p> {
    Applied(&'p Change, Duration, Result<Attrs, Error>),
    Settled(&'p Change, Result<(), Error>),
}

/// Applies `plan` to `graph`. Nodes that write nothing count as done from the start; the
/// others run as soon as the nodes they wait for are done, concurrently. When provisioning,
/// a written node settles once every node that depends on it is done (a key once the block
/// that holds it is stored). After a failure, the running work finishes and nothing new starts
/// for the failed pools, while the other pools' work goes on: a node (or its settling) waits
/// for good when every pool it serves has a failed node, or when it serves no pool at all; a
/// node shared with a healthy pool goes on. A run of one pool thus starts nothing new after
/// its first failure. The outcome says what exists now.
pub async fn apply(graph: &Graph, plan: &Plan, progress: &dyn Progress) -> Applied {
    let waits = waits_for(graph, plan.goal);
    let dependents = match plan.goal {
        Goal::Provision => waits_for(graph, Goal::Teardown),
        Goal::Teardown => BTreeMap::new(),
    };
    let mut attrs: BTreeMap<String, Attrs> = BTreeMap::new();
    let mut done: HashSet<&str> = HashSet::new();
    let mut waiting = Vec::new();
    for change in &plan.changes {
        if change.observed.action.writes() {
            waiting.push(change);
        } else {
            attrs.insert(change.info.id.clone(), change.observed.attrs.clone());
            done.insert(&change.info.id);
        }
    }

    let (reports, mut reported) = tokio::sync::mpsc::unbounded_channel();
    let step = |change: &Change| Step { info: change.info.clone(), waits: reports.clone() };
    let mut running = FuturesUnordered::new();
    let mut written = Vec::new();
    let mut unsettled: Vec<&Change> = Vec::new();
    let mut failures = Failures::default();
    loop {
        let startable = |c: &&Change| !failures.holds_back(&c.info);
        let (ready, rest): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|c| startable(c) && waits[c.info.id.as_str()].iter().all(|d| done.contains(d)));
        waiting = rest;
        for change in ready {
            let entry = graph.entry(&change.info.id).expect("plan comes from this graph");
            let node = entry.node.clone();
            let observed = change.observed.clone();
            let work = match plan.goal {
                Goal::Provision => {
                    let inputs = Inputs::new(entry.aliases.iter().map(|(local, id)| (local.clone(), attrs[id].clone())).chain(entry.context.clone()).collect());
                    async move { node.apply(&observed, &inputs).await }.boxed()
                }
                Goal::Teardown => async move { node.tear_down(&observed).await.map(|()| Attrs::new()) }.boxed(),
            };
            progress.started(&change.info);
            let work = STEP.scope(step(change), work);
            running.push(
                async move {
                    let start = Instant::now();
                    let result = work.await;
                    Finished::Applied(change, start.elapsed(), result)
                }
                .boxed(),
            );
        }
        let (settling, rest): (Vec<_>, Vec<_>) =
            unsettled.into_iter().partition(|c| startable(c) && dependents.get(c.info.id.as_str()).is_none_or(|ds| ds.iter().all(|d| done.contains(d))));
        unsettled = rest;
        for change in settling {
            let node = graph.entry(&change.info.id).expect("plan comes from this graph").node.clone();
            let applied = attrs[&change.info.id].clone();
            let settling = STEP.scope(step(change), async move { node.settle(&applied).await });
            running.push(async move { Finished::Settled(change, settling.await) }.boxed());
        }
        let finished = tokio::select! {
            Some((info, why)) = reported.recv() => {
                progress.waiting(&info, &why);
                continue;
            }
            finished = running.next() => match finished {
                Some(finished) => finished,
                None => break,
            },
        };
        let (change, error) = match finished {
            Finished::Applied(change, elapsed, Ok(new)) => {
                progress.finished(&change.info, Ok(elapsed));
                let mut all = change.observed.attrs.clone();
                all.extend(new);
                attrs.insert(change.info.id.clone(), all);
                done.insert(&change.info.id);
                written.push(change.info.id.clone());
                if plan.goal == Goal::Provision {
                    unsettled.push(change);
                }
                continue;
            }
            Finished::Applied(change, _, Err(error)) => {
                progress.finished(&change.info, Err(&error));
                (change, error)
            }
            Finished::Settled(_, Ok(())) => continue,
            Finished::Settled(change, Err(error)) => (change, error),
        };
        failures.record(&change.info, error);
    }
    let not_started = waiting.into_iter().map(|c| c.info.clone()).collect();
    Applied { attrs, written, failures: failures.failed, not_started }
}
