//! The account's IAM inventory: a pools file of several pools in one account reads IAM with one
//! paged `GetAccountAuthorizationDetails` instead of a read per user, role and policy, and sees
//! through it what the reads by name saw (a missing attachment, a drifted document), against
//! moto behind the counting proxy, which pages the inventory by 2 (moto answers it whole).

mod support;

use serde_json::json;
use support::{Call, World};

/// How many of `calls` (since `mark`) are IAM action `action`.
fn count(calls: &[Call], mark: usize, action: &str) -> usize {
    calls[mark..].iter().filter(|c| c.service == "iam" && c.action == action).count()
}

/// The IAM reads by name that the inventory replaces.
const BY_NAME: [&str; 6] = ["GetUser", "GetPolicy", "GetPolicyVersion", "ListAttachedUserPolicies", "GetRole", "GetRolePolicy"];

#[tokio::test]
async fn several_pools_in_one_account_read_its_iam_once_every_page_and_see_drift_through_it() {
    let world = World::new("inv").await;
    let pools = world.ecs_pools_file(&world.pool_names(3));

    let mark = world.aws.mark().await;
    world.run(&["plan", "--file", &pools]).ok();
    let calls = world.aws.calls().await;
    assert_eq!(count(&calls, mark, "GetAccountAuthorizationDetails"), 1, "one inventory of a fresh account: {:?}", &calls[mark..]);
    for action in BY_NAME {
        assert_eq!(count(&calls, mark, action), 0, "no {action} beside the inventory");
    }

    world.run(&["apply", "--file", &pools, "--yes"]).ok();
    // Three users, three policies and the execution role: several pages of 2, every one read,
    // or a pool whose user is on a later page would be planned as new.
    let marks = world.marks().await;
    let plan = world.run(&["plan", "--file", &pools, "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "nothing to change after the apply:\n{}", plan.all());
    let calls = world.aws.calls().await;
    assert!(count(&calls, marks.0, "GetAccountAuthorizationDetails") >= 4, "every page of the inventory: {:?}", &calls[marks.0..]);
    for action in BY_NAME {
        assert_eq!(count(&calls, marks.0, action), 0, "no {action} beside the inventory");
    }
    world.assert_no_writes_since(marks).await;

    // Drift the inventory must show: pool 0's policy detached from its user, pool 1's
    // document changed behind pushpool's back.
    let iam = world.clients().await.iam;
    let arn = |i: usize| format!("arn:aws:iam::{}:policy/{}-{i}", world.account.id, world.pool);
    iam.detach_user_policy().user_name(format!("{}-0", world.pool)).policy_arn(arn(0)).send().await.unwrap();
    let widened = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    iam.create_policy_version().policy_arn(arn(1)).policy_document(widened.to_string()).set_as_default(true).send().await.unwrap();
    let plan = world.run(&["plan", "--file", &pools, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "the drift is a change:\n{}", plan.all());
    assert!(plan.stdout.contains(&format!("not attached to IAM user {}-0", world.pool)), "{}", plan.stdout);
    let drifted: Vec<&str> = plan.stdout.lines().filter(|l| l.contains(&format!("{}-1", world.pool)) && l.contains("IAM policy")).collect();
    assert!(drifted.iter().any(|l| l.contains("update")), "pool 1's policy is updated: {drifted:?}\n{}", plan.stdout);

    world.run(&["apply", "--file", &pools, "--yes"]).ok();
    let attached = iam.list_attached_user_policies().user_name(format!("{}-0", world.pool)).send().await.unwrap();
    assert!(attached.attached_policies().iter().any(|p| p.policy_arn() == Some(arn(0).as_str())), "attached again");
    let marks = world.marks().await;
    world.run(&["apply", "--file", &pools, "--yes"]).ok();
    world.assert_no_writes_since(marks).await;
}

#[tokio::test]
async fn two_pools_keep_their_reads_by_name_and_a_refused_inventory_falls_back_to_them() {
    let world = World::new("inv").await;
    let pools = world.ecs_pools_file(&world.pool_names(2));
    let mark = world.aws.mark().await;
    world.run(&["plan", "--file", &pools]).ok();
    let calls = world.aws.calls().await;
    assert_eq!(count(&calls, mark, "GetAccountAuthorizationDetails"), 0, "a small run reads by name");
    assert_eq!(count(&calls, mark, "GetUser"), 2);

    // An operator whose policy predates the inventory: refused, then read by name, no error.
    let pools = world.ecs_pools_file(&world.pool_names(3));
    world
        .aws
        .set_faults(
            json!({"GetAccountAuthorizationDetails": {"status": 403, "code": "AccessDenied", "message": "not authorized to perform: iam:GetAccountAuthorizationDetails"}}),
        )
        .await;
    let mark = world.aws.mark().await;
    let plan = world.run(&["plan", "--file", &pools]);
    plan.ok();
    let calls = world.aws.calls().await;
    assert_eq!(count(&calls, mark, "GetAccountAuthorizationDetails"), 1, "asked once");
    assert_eq!(count(&calls, mark, "GetUser"), 3, "then each user by name");
    assert!(!plan.all().contains("AccessDenied"), "the refusal is no error:\n{}", plan.all());
}
