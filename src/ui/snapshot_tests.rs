//! Snapshots of the three renderings of a plan (text, JSON, Markdown) in four states: a
//! fresh account, nothing to do, a partial state, and drift; and of a teardown plan. The
//! snapshots are of plain text; the colours of the text are checked beside them.

use std::sync::Arc;

use serde_json::json;

use super::{PlanHeader, render_applied, render_markdown, render_plan, render_torn_down};
use crate::document::{PlanDocument, PoolDoc, TargetDoc};
use crate::engine::{Action, Attrs, Change, Goal, NodeInfo, Observation, Plan};

fn change(id: &str, kind: &str, label: &str, name: &str, action: Action, reason: &str, attrs: Attrs) -> Change {
    let info = NodeInfo {
        id: id.into(),
        kind: kind.into(),
        label: label.into(),
        name: name.into(),
        says: String::new(),
        after: vec![],
        pools: vec!["my-ecs-pool".into()],
        scope: String::new(),
    };
    Change { info, observed: Arc::new(Observation { action, reason: reason.into(), attrs }) }
}

/// The ECS graph's main nodes with each one's action and reason in a given state.
fn plan(state: &[(Action, &str)]) -> Plan {
    let nodes = [
        ("execution_role", "aws.iam_role", "IAM role", "PrefectEcsTaskExecutionRole"),
        ("user", "aws.iam_user", "IAM user", "prefect-ecs-user"),
        ("policy", "aws.iam_policy", "IAM policy", "prefect-ecs-policy"),
        ("access_key", "aws.iam_access_key", "IAM access key", "prefect-ecs-user"),
        ("vpc", "aws.vpc", "VPC", "prefect-ecs-vpc"),
        ("credentials", "prefect.block", "block", "my-ecs-pool-aws-credentials"),
    ];
    let mut changes: Vec<Change> = nodes
        .iter()
        .zip(state)
        .map(|((id, kind, label, name), (action, reason))| {
            let attrs = if *id == "vpc" && *action == Action::Reuse { Attrs::new().with("id", "vpc-0abc") } else { Attrs::new() };
            change(id, kind, label, name, *action, reason, attrs)
        })
        .collect();
    let pool_action = state.last().map(|(a, _)| *a).unwrap_or(Action::Reuse);
    let vpc = if state[4].0 == Action::Reuse { json!("vpc-0abc") } else { json!("(known after apply)") };
    let variables = json!({"cluster": "prefect-ecs-cluster", "vpc_id": vpc});
    let reason = if pool_action == Action::Reuse { "exists with the wanted job variables" } else { "missing" };
    changes.push(change("pool", "prefect.work_pool", "work pool", "my-ecs-pool", pool_action, reason, Attrs::new().with("job_variables", variables)));
    Plan { goal: Goal::Provision, changes }
}

fn fresh() -> Plan {
    use Action::Create;
    plan(&[
        (Create, "missing"),
        (Create, "missing"),
        (Create, "missing"),
        (Create, "block my-ecs-pool-aws-credentials does not exist yet"),
        (Create, "default VPC vpc-1 has no route to an internet gateway; new VPC 10.0.0.0/16"),
        (Create, "missing"),
        (Create, "missing"),
    ])
}

fn noop() -> Plan {
    use Action::Reuse;
    plan(&[
        (Reuse, "exists as wanted"),
        (Reuse, "exists"),
        (Reuse, "exists as wanted"),
        (Reuse, "block my-ecs-pool-aws-credentials holds this active key"),
        (Reuse, "exists"),
        (Reuse, "exists with the wanted data"),
        (Reuse, "exists with the wanted job variables"),
    ])
}

fn partial() -> Plan {
    use Action::{Create, Reuse};
    plan(&[
        (Reuse, "exists as wanted"),
        (Reuse, "exists"),
        (Create, "missing"),
        (Create, "block my-ecs-pool-aws-credentials does not exist yet"),
        (Reuse, "exists"),
        (Create, "missing"),
        (Create, "missing"),
    ])
}

fn drift() -> Plan {
    use Action::{Create, Reuse, Update};
    plan(&[
        (Update, "trust policy differs"),
        (Reuse, "exists"),
        (Update, "document drifted: lacks logs:CreateLogGroup; also grants s3:GetObject"),
        (Create, "block my-ecs-pool-aws-credentials holds key AKIA1, which no longer exists on user prefect-ecs-user"),
        (Reuse, "exists"),
        (Update, "takes new values: access_key.id"),
        (Reuse, "exists with the wanted job variables"),
    ])
}

/// A teardown with another pool sharing the role, a default VPC and a block already gone.
fn teardown() -> Plan {
    use Action::{Delete, Gone, Keep};
    let rows = [
        ("execution_role", "aws.iam_role", "IAM role", "PrefectEcsTaskExecutionRole", Keep, "in use by pool 'other-pool'"),
        ("user", "aws.iam_user", "IAM user", "prefect-ecs-user", Delete, "created by pushpool; no other block holds one of its keys"),
        (
            "vpc",
            "aws.vpc",
            "VPC",
            "prefect-ecs-vpc",
            Keep,
            "the account's default VPC vpc-1: not created by pushpool (no managed-by=pushpool tag), so pushpool never deletes it",
        ),
        ("repository", "aws.ecr_repository", "ECR repository", "prefect-flows", Keep, "holds 3 image(s); --force deletes them with it"),
        ("credentials", "prefect.block", "block", "my-ecs-pool-aws-credentials", Gone, "does not exist"),
        ("pool", "prefect.work_pool", "work pool", "my-ecs-pool", Delete, "the pool itself (--keep-pool keeps it)"),
    ];
    let changes = rows.iter().map(|(id, kind, label, name, action, reason)| change(id, kind, label, name, *action, reason, Attrs::new())).collect();
    Plan { goal: Goal::Teardown, changes }
}

fn header() -> PlanHeader {
    PlanHeader {
        pools: vec![("my-ecs-pool".into(), "ecs:push".into())],
        prefect: "http://127.0.0.1:4200/api".into(),
        targets: vec!["AWS account 123456789012, region us-east-1".into()],
    }
}

fn json(plan: &Plan) -> String {
    let pools = vec![PoolDoc { name: "my-ecs-pool".into(), pool_type: "ecs:push".into(), mode: "ensure".into(), ..Default::default() }];
    let targets = vec![TargetDoc::Aws { account: "123456789012".into(), region: "us-east-1".into(), profile: None }];
    let mut document = PlanDocument::new("http://127.0.0.1:4200/api", pools, targets, plan);
    document.pushpool_version = "VERSION".into();
    document.created_at = "2026-11-30T12:00:00Z".into();
    document.to_json()
}

macro_rules! renderings {
    ($name:ident, $plan:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn text() {
                insta::assert_snapshot!(render_plan(&header(), &$plan, Some(110), false));
            }

            #[test]
            fn json() {
                insta::assert_snapshot!(super::json(&$plan));
            }

            #[test]
            fn markdown() {
                insta::assert_snapshot!(render_markdown(&header(), &$plan));
            }
        }
    };
}

renderings!(fresh_account, fresh());
renderings!(no_op, noop());
renderings!(partial_state, partial());
renderings!(drifted, drift());
renderings!(teardown_plan, teardown());

#[test]
fn torn_down_report_lists_what_stayed_and_why() {
    insta::assert_snapshot!(render_torn_down(&teardown()));
}

fn every_plan() -> [Plan; 5] {
    [fresh(), noop(), partial(), drift(), teardown()]
}

#[test]
fn colour_paints_the_action_words_and_changes_nothing_else() {
    let provision = render_plan(&header(), &drift(), Some(110), true);
    assert!(provision.contains("\u{1b}[32m+ create\u{1b}[0m"), "{provision}");
    assert!(provision.contains("\u{1b}[33m~ update\u{1b}[0m"), "{provision}");
    assert!(!provision.contains("\u{1b}[0m  reuse"), "a reuse is not coloured: {provision}");
    let teardown_text = render_plan(&header(), &teardown(), Some(110), true);
    assert!(teardown_text.contains("\u{1b}[31m- delete\u{1b}[0m"), "{teardown_text}");
    for plan in every_plan() {
        let coloured = render_plan(&header(), &plan, Some(110), true);
        assert_eq!(console::strip_ansi_codes(&coloured), render_plan(&header(), &plan, Some(110), false), "the box keeps its layout");
    }
}

#[test]
fn without_colour_no_escape_anywhere() {
    for plan in every_plan() {
        for text in [render_plan(&header(), &plan, Some(110), false), render_plan(&header(), &plan, None, false), render_torn_down(&plan)] {
            assert!(!text.contains('\u{1b}'), "{text}");
        }
    }
    let applied = render_applied(&header(), &fresh(), &["123.dkr.ecr.us-east-1.amazonaws.com/prefect-flows".into()], &[]);
    assert!(!applied.contains('\u{1b}'), "{applied}");
}

/// Markdown and JSON go to files and pull requests: never an escape, even with stdout's
/// colour switch on.
#[test]
fn markdown_and_json_never_hold_escapes() {
    let before = console::colors_enabled();
    for enabled in [true, false] {
        console::set_colors_enabled(enabled);
        for plan in every_plan() {
            for text in [render_markdown(&header(), &plan), json(&plan)] {
                assert!(!text.contains('\u{1b}'), "colour {enabled}: {text}");
            }
        }
    }
    console::set_colors_enabled(before);
}
