//! The error of an apply that failed part-way: what failed and why, what exists now, and how to
//! resume. With several pools (a pools file) a failure stops only the pools it is of (see
//! [`crate::engine::apply`]), so the error says, per failed pool, what failed, what was written for it
//! and what was not started, and which pools were applied in full.

use crate::engine::{Applied, Goal, Graph, NodeInfo, summarise};
use crate::error::Error;

/// What a run that resumes a failed apply does: the same command again.
const RESUME: &str = "run the same command again: pushpool finds what exists and resumes";

/// The error of an apply of `pools` (their names, in the run's order) whose `applied` has
/// failures. `logs_in`: a successful apply would have logged Docker in to the pools'
/// registries, which a failed one skips and the run that resumes does.
pub(super) fn mid_apply_error(graph: &Graph, goal: Goal, pools: &[&str], applied: &Applied, logs_in: bool) -> Error {
    let written: Vec<&NodeInfo> = applied.written.iter().filter_map(|id| graph.entry(id)).map(|e| &e.info).collect();
    match pools {
        [_] => one_pool(&written, applied),
        _ => several_pools(&written, goal, pools, applied, logs_in),
    }
}

/// "IAM user prefect-ecs-user"; a node without a name of its own (an access key) by its label.
fn described(info: &NodeInfo) -> String {
    format!("{} {}", info.label, info.name).trim_end().to_owned()
}

/// The run's only pool failed: its first failure as the error, with what was written before it
/// and what was not started; later failures of work that was in flight are named after them.
/// `written`: the nodes of `applied.written`.
fn one_pool(written: &[&NodeInfo], applied: &Applied) -> Error {
    let (_, error) = &applied.failures[0];
    let done: Vec<String> = written.iter().map(|info| described(info)).collect();
    let skipped: Vec<String> = applied.not_started.iter().map(described).collect();
    let mut cause = error.cause.clone();
    cause.push_str(&format!("\n  written before the failure: {}", if done.is_empty() { "nothing".to_owned() } else { done.join(", ") }));
    if !skipped.is_empty() {
        cause.push_str(&format!("\n  not started: {}", skipped.join(", ")));
    }
    for (_, later) in &applied.failures[1..] {
        cause.push_str(&format!("\n  also failed: {}", indented(later, "    ")));
    }
    let fix = match &error.fix {
        Some(fix) => format!("{fix}; then {RESUME}"),
        None => format!("fix the cause, then {RESUME}"),
    };
    Error::remote(error.what.clone(), cause).fix(fix)
}

/// `error` on lines after the first indented by `indent`, its fix included.
fn indented(error: &Error, indent: &str) -> String {
    error.to_string().replace('\n', &format!("\n{indent}"))
}

/// Several pools: per failed pool, its failures, what was written and not started for it
/// (the resources it shares with other pools included); the pools left unfinished by another
/// pool's failure; then the pools applied in full.
fn several_pools(written: &[&NodeInfo], goal: Goal, pools: &[&str], applied: &Applied, logs_in: bool) -> Error {
    let (did, in_full) = match goal {
        Goal::Provision => ("written", "applied in full"),
        Goal::Teardown => ("torn down", "torn down in full"),
    };
    let serves = |info: &NodeInfo, pool: &str| info.pools.iter().any(|p| p == pool);
    let listed = |nodes: Vec<String>| if nodes.is_empty() { "nothing".to_owned() } else { nodes.join(", ") };
    let (mut failed, mut unfinished, mut complete) = (Vec::new(), Vec::new(), Vec::new());
    let mut details = String::new();
    for &pool in pools {
        let failures: Vec<&Error> = applied.failures.iter().filter(|(info, _)| serves(info, pool)).map(|(_, error)| error).collect();
        let skipped: Vec<String> = applied.not_started.iter().filter(|info| serves(info, pool)).map(described).collect();
        if failures.is_empty() {
            if skipped.is_empty() {
                complete.push(format!("'{pool}'"));
            } else {
                unfinished.push(format!("\n  - work pool '{pool}' did not finish, as it shares what failed: not started for it: {}", skipped.join(", ")));
            }
            continue;
        }
        failed.push(format!("'{pool}'"));
        details.push_str(&format!("\n  - work pool '{pool}':"));
        for error in failures {
            details.push_str(&format!("\n      failed: {}", indented(error, "      ")));
        }
        let shared = |info: &&NodeInfo| if info.pools.len() > 1 { format!("{} (shared)", described(info)) } else { described(info) };
        details.push_str(&format!("\n      {did} for it: {}", listed(written.iter().filter(|info| serves(info, pool)).map(shared).collect())));
        if !skipped.is_empty() {
            details.push_str(&format!("\n      not started for it: {}", skipped.join(", ")));
        }
    }
    // A node that serves none of the run's pools is no pool's: its failure is named on its own.
    for (_, error) in applied.failures.iter().filter(|(info, _)| !pools.iter().any(|&pool| serves(info, pool))) {
        details.push_str(&format!("\n  - failed, in no one pool: {}", indented(error, "      ")));
    }
    let mut cause = match failed.len() {
        0 => format!("a resource of none of the {} pools failed{details}", pools.len()),
        n => format!("{n} of {} pools failed ({}){details}", pools.len(), failed.join(", ")),
    };
    unfinished.iter().for_each(|line| cause.push_str(line));
    if !complete.is_empty() {
        let them = match (failed.is_empty(), complete.len()) {
            (true, _) => "pools",
            (false, 1) => "the other pool was",
            (false, _) => "the other pools were",
        };
        cause.push_str(&format!("\n  {them} {in_full}: {}", summarise(&complete)));
    }
    if logs_in {
        cause.push_str("\n  Docker was not logged in to any registry: the run that resumes logs it in");
    }
    Error::remote("work pools", cause).fix(format!("fix each cause above, then {RESUME} the pools that failed"))
}

#[cfg(test)]
mod tests;
