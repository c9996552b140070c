//! The wording of a failed apply's error, with one pool and with several.

use std::collections::BTreeMap;

use super::*;

fn info(id: &str, label: &str, pools: &[&str]) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        kind: "test.fake".into(),
        label: label.into(),
        name: id.into(),
        says: String::new(),
        after: Vec::new(),
        pools: pools.iter().map(|p| (*p).to_owned()).collect(),
        scope: String::new(),
    }
}

fn applied(written: &[&NodeInfo], failures: Vec<(NodeInfo, Error)>, not_started: Vec<NodeInfo>) -> Applied {
    Applied { attrs: BTreeMap::new(), written: written.iter().map(|i| i.id.clone()).collect(), failures, not_started }
}

fn refused(what: &str) -> Error {
    Error::remote(what, "iam:CreateUser failed: denied (AccessDenied)").fix("grant iam:CreateUser")
}

#[test]
fn one_pool_names_the_failure_what_was_written_and_what_was_not_started() {
    let role = info("role", "IAM role", &["p"]);
    let done = applied(&[&role], vec![(info("user", "IAM user", &["p"]), refused("IAM user user"))], vec![info("policy", "IAM policy", &["p"])]);
    let error = one_pool(&[&role], &done);
    assert_eq!(error.what, "IAM user user");
    assert_eq!(error.cause, "iam:CreateUser failed: denied (AccessDenied)\n  written before the failure: IAM role role\n  not started: IAM policy policy");
    assert_eq!(error.fix.as_deref(), Some("grant iam:CreateUser; then run the same command again: pushpool finds what exists and resumes"));

    // Work in flight that failed too is named after; with nothing written, it says so.
    let twice =
        applied(&[], vec![(info("user", "IAM user", &["p"]), refused("IAM user user")), (info("c", "ECS cluster", &["p"]), Error::remote("ECS cluster c", "503"))], vec![]);
    let error = one_pool(&[], &twice);
    assert_eq!(error.cause, "iam:CreateUser failed: denied (AccessDenied)\n  written before the failure: nothing\n  also failed: ECS cluster c: 503");
}

#[test]
fn several_pools_name_each_failed_pool_what_was_written_for_it_and_the_pools_applied_in_full() {
    let (shared, own_a, own_b) = (info("role", "IAM role", &["a", "b", "c"]), info("a/user", "IAM user", &["a"]), info("b/cluster", "ECS cluster", &["b"]));
    let written = [&shared, &own_a, &own_b];
    let done = applied(
        &written,
        vec![(info("b/user", "IAM user", &["b"]), refused("IAM user b-user"))],
        vec![info("b/policy", "IAM policy", &["b"]), info("b/key", "access key", &["b"])],
    );
    let error = several_pools(&written, Goal::Provision, &["a", "b", "c"], &done, true);
    assert_eq!(error.what, "work pools");
    let expected = "1 of 3 pools failed ('b')\n  - work pool 'b':\n      failed: IAM user b-user: iam:CreateUser failed: denied (AccessDenied)\n        fix: grant iam:CreateUser\n      written for it: IAM role role (shared), ECS cluster b/cluster\n      not started for it: IAM policy b/policy, access key b/key\n  the other pools were applied in full: 'a', 'c'\n  Docker was not logged in to any registry: the run that resumes logs it in";
    assert_eq!(error.cause, expected);
    assert_eq!(error.fix.as_deref(), Some("fix each cause above, then run the same command again: pushpool finds what exists and resumes the pools that failed"));
    assert!(!error.to_string().contains("written for it: IAM user a/user"), "a's own nodes are not b's");
}

#[test]
fn a_failed_shared_node_fails_each_of_its_pools_and_long_lists_are_summarised() {
    let pools = ["a", "b", "p1", "p2", "p3", "p4", "p5"];
    let cluster = info("cluster", "ECS cluster", &["a", "b"]);
    // A pool whose shared node waits for the failed one did not finish, without failing.
    let done = applied(&[], vec![(cluster, Error::remote("ECS cluster cluster", "503"))], vec![info("pool-c", "work pool", &["p5", "a"])]);
    let error = several_pools(&[], Goal::Teardown, &pools, &done, false);
    assert!(error.cause.starts_with("2 of 7 pools failed ('a', 'b')\n  - work pool 'a':\n      failed: ECS cluster cluster: 503\n      torn down for it: nothing\n      not started for it: work pool pool-c\n  - work pool 'b':"), "{}", error.cause);
    assert!(error.cause.contains("\n  - work pool 'p5' did not finish, as it shares what failed: not started for it: work pool pool-c"), "{}", error.cause);
    assert!(error.cause.ends_with("\n  the other pools were torn down in full: 'p1', 'p2', 'p3' and 1 more"), "{}", error.cause);
    assert!(!error.cause.contains("Docker"), "a teardown logs nothing in: {}", error.cause);

    // A failure of a node that serves no pool of the run is still named.
    let done = applied(&[], vec![(info("lock", "marker", &[]), Error::remote("marker lock", "refused"))], vec![]);
    let error = several_pools(&[], Goal::Provision, &["a", "b"], &done, false);
    assert_eq!(error.cause, "a resource of none of the 2 pools failed\n  - failed, in no one pool: marker lock: refused\n  pools applied in full: 'a', 'b'");
}
