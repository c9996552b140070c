//! Progress of an apply of several pools (a pools file): one line per pool as it finishes, and
//! on a terminal a bar of pools done out of the total with the failures so far, instead of a
//! line per resource. A hundred pools make over a thousand steps: a wall of lines nobody reads.
//!
//! A pool is done when every write step that serves it has finished (a resource several pools
//! share counts for each of them) and failed as soon as one of those steps failed; a failed
//! pool is not counted as done, whatever of it finishes later ("2/3 pools done, 1 failed"; the
//! others go on, see [`crate::engine::apply`]). Pools with nothing to write are not counted:
//! they are done before the apply starts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::progress::stderr_line;
use crate::engine::{NodeInfo, Plan, Progress};
use crate::error::Error;

/// The by-pool progress display of one apply.
pub struct PoolProgress {
    state: Mutex<State>,
    bar: Option<ProgressBar>,
}

#[derive(Default)]
struct State {
    /// Each pool's write steps not finished yet.
    remaining: BTreeMap<String, usize>,
    /// Pools with a failed step.
    failed: BTreeSet<String>,
    /// Pools done (failed ones are not), out of `remaining`'s first size.
    total: usize,
    done: usize,
}

impl State {
    /// "3/10 pools done, 1 failed".
    fn tally(&self) -> String {
        let failed = match self.failed.len() {
            0 => String::new(),
            n => format!(", {n} failed"),
        };
        format!("{}/{} pools done{failed}", self.done, self.total)
    }
}

impl PoolProgress {
    /// A display for the pools whose steps `plan` writes; a bar only when `terminal`.
    pub fn new(plan: &Plan, terminal: bool) -> Self {
        let mut remaining: BTreeMap<String, usize> = BTreeMap::new();
        for change in plan.changes.iter().filter(|c| c.observed.action.writes()) {
            for pool in &change.info.pools {
                *remaining.entry(pool.clone()).or_default() += 1;
            }
        }
        let total = remaining.len();
        let bar = terminal.then(|| {
            let bar = ProgressBar::new(total as u64);
            if let Ok(style) = ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} pools {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { state: Mutex::new(State { remaining, total, ..State::default() }), bar }
    }

    /// The pools of `plan` whose steps it writes: more than one calls for this display.
    pub fn pools_in(plan: &Plan) -> usize {
        let pools: BTreeSet<&String> = plan.changes.iter().filter(|c| c.observed.action.writes()).flat_map(|c| &c.info.pools).collect();
        pools.len()
    }

    fn show(&self, line: &str, state: &State) {
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.set_position(state.done as u64);
                bar.set_message(if state.failed.is_empty() { String::new() } else { format!("{} failed", state.failed.len()) });
            }
            None => stderr_line(line),
        }
    }
}

impl Progress for PoolProgress {
    fn started(&self, _info: &NodeInfo) {}

    fn waiting(&self, info: &NodeInfo, why: &str) {
        let line = format!("  … {} {} ({}): {why}", info.label, info.name, info.pools.join(", "));
        match &self.bar {
            Some(bar) => bar.set_message(line.trim_start().to_owned()),
            None => stderr_line(&line),
        }
    }

    fn finished(&self, info: &NodeInfo, result: Result<Duration, &Error>) {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for pool in &info.pools {
            let Some(left) = state.remaining.get_mut(pool) else { continue };
            *left = left.saturating_sub(1);
            let left = *left;
            let line = match &result {
                Err(_) if state.failed.insert(pool.clone()) => {
                    let line = format!("  ✗ work pool '{pool}' failed at {} {}", info.label, info.name);
                    Some(format!("{line} ({})", state.tally()))
                }
                Ok(_) if left == 0 && !state.failed.contains(pool) => {
                    state.done += 1;
                    Some(format!("  ✓ work pool '{pool}' ({})", state.tally()))
                }
                _ => None,
            };
            if let Some(line) = line {
                self.show(&line, &state);
            }
        }
    }
}

impl Drop for PoolProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::{Attrs, Change, Goal, Observation};

    fn change(id: &str, pools: &[&str], write: bool) -> Change {
        let info = NodeInfo {
            id: id.into(),
            kind: "aws.ecs_cluster".into(),
            label: "step".into(),
            name: id.into(),
            says: String::new(),
            after: Vec::new(),
            pools: pools.iter().map(|p| (*p).to_owned()).collect(),
            scope: String::new(),
        };
        let observed = if write { Observation::create("missing", Attrs::new()) } else { Observation::reuse("as wanted", Attrs::new()) };
        Change { info, observed: Arc::new(observed) }
    }

    #[test]
    fn a_pool_is_done_when_its_last_step_is_and_failed_at_its_first_failure() {
        let plan = Plan {
            goal: Goal::Provision,
            changes: vec![change("shared", &["a", "b"], true), change("a1", &["a"], true), change("b1", &["b"], true), change("c0", &["c"], false)],
        };
        assert_eq!(PoolProgress::pools_in(&plan), 2, "c writes nothing");
        let view = PoolProgress::new(&plan, false);
        let tally = || view.state.lock().unwrap().tally();
        let error = Error::remote("b1", "refused");
        view.finished(&plan.changes[2].info, Err(&error));
        assert_eq!(tally(), "0/2 pools done, 1 failed");
        view.finished(&plan.changes[0].info, Ok(Duration::ZERO));
        assert_eq!(tally(), "0/2 pools done, 1 failed", "a shared step finishes neither pool, and a failed pool's last step does not make it done");
        view.finished(&plan.changes[1].info, Ok(Duration::ZERO));
        assert_eq!(tally(), "1/2 pools done, 1 failed");
    }
}
