//! The plan as Markdown, for a pull request comment: a summary line, a table of the
//! changes, and the unchanged resources and job variables folded away in `<details>`.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::summary::{PlanHeader, job_variables, shown, tally};
use crate::engine::{Action, Change, Goal, Plan};

/// Renders the plan as GitHub-flavoured Markdown.
pub fn render_markdown(header: &PlanHeader, plan: &Plan) -> String {
    let mut out = String::new();
    let (create, update, reuse) = (plan.count(Action::Create), plan.count(Action::Update), plan.count(Action::Reuse));
    let _ = match (plan.goal, plan.is_empty()) {
        (Goal::Provision, true) => writeln!(out, "### pushpool plan: no changes\n"),
        (Goal::Provision, false) => writeln!(out, "### pushpool plan: {create} to create, {update} to update, {reuse} unchanged\n"),
        (Goal::Teardown, true) => writeln!(out, "### pushpool teardown: nothing to delete\n"),
        (Goal::Teardown, false) => writeln!(out, "### pushpool teardown: {}\n", tally(plan).join(", ")),
    };
    let pools: Vec<String> = header.pools.iter().map(|(name, kind)| format!("`{}` ({kind})", cell(name))).collect();
    let _ = write!(out, "**Pools:** {} · **Prefect:** `{}`", pools.join(", "), cell(&header.prefect));
    for target in &header.targets {
        let _ = write!(out, " · **Target:** {}", cell(target));
    }
    out.push_str("\n\n");

    let (changed, unchanged): (Vec<&Change>, Vec<&Change>) = plan.changes.iter().partition(|c| c.observed.action.writes());
    if changed.is_empty() {
        let _ = writeln!(out, "Every resource is up to date.\n");
    } else if header.targets.len() > 1 {
        // Several accounts, projects or regions: a reviewer reads each one's changes together.
        for (scope, changes) in by_scope(&changed) {
            let _ = writeln!(out, "#### {scope}\n");
            table(&mut out, header, &changes);
        }
    } else {
        table(&mut out, header, &changed);
    }
    if !unchanged.is_empty() {
        let quiet = if plan.goal == Goal::Teardown { "kept or gone" } else { "unchanged" };
        let _ = writeln!(out, "<details><summary>{} {quiet}</summary>\n", unchanged.len());
        table(&mut out, header, &unchanged);
        out.push_str("</details>\n\n");
    }
    for (pool, variables) in job_variables(plan) {
        let _ = writeln!(out, "<details><summary>Job variable defaults of <code>{}</code></summary>\n", html(pool));
        out.push_str("| Variable | Default |\n|---|---|\n");
        for (name, value) in variables {
            let _ = writeln!(out, "| `{}` | `{}` |", cell(name), cell(&shown(value)));
        }
        out.push_str("\n</details>\n\n");
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// `changes` grouped by where their resources are, each group with its title: an account's
/// account-wide resources (IAM), then each of its regions, account by account (likewise a
/// tenant, a subscription, a project), and Prefect's own objects, which are in no cloud, last.
fn by_scope<'a>(changes: &[&'a Change]) -> Vec<(String, Vec<&'a Change>)> {
    let mut sections: BTreeMap<(bool, &str), Vec<&Change>> = BTreeMap::new();
    for change in changes {
        let scope = change.info.scope.as_str();
        sections.entry((scope.is_empty(), scope)).or_default().push(change);
    }
    let title = |scope: &str| match scope {
        "" => "Prefect".to_owned(),
        scope if scope.contains('/') => format!("`{}`", cell(scope)),
        scope => format!("`{}` (all regions)", cell(scope)),
    };
    sections.into_iter().map(|((_, scope), members)| (title(scope), members)).collect()
}

fn table(out: &mut String, header: &PlanHeader, changes: &[&Change]) {
    let several = header.several();
    out.push_str(if several { "| Action | Resource | Name | Pools | Why |\n|---|---|---|---|---|\n" } else { "| Action | Resource | Name | Why |\n|---|---|---|---|\n" });
    for change in changes {
        let action = match change.observed.action {
            Action::Create => "**create**",
            Action::Update => "**update**",
            Action::Delete => "**delete**",
            quiet => quiet.as_str(),
        };
        let pools = if several { format!(" {} |", cell(&change.info.pools.join(", "))) } else { String::new() };
        let _ = writeln!(out, "| {action} | {} | `{}` |{pools} {} |", cell(&change.info.label), cell(&change.info.name), cell(&change.observed.reason));
    }
    out.push('\n');
}

/// Text safe inside a table cell: pipes escaped, line breaks as `<br>`.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

/// Text safe inside HTML.
fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::engine::{Attrs, NodeInfo, Observation};

    fn change(label: &str, name: &str, pool: &str, scope: &str) -> Change {
        let info = NodeInfo {
            id: format!("{pool}-{label}"),
            kind: "aws.ecs_cluster".into(),
            label: label.into(),
            name: name.into(),
            says: String::new(),
            after: vec![],
            pools: vec![pool.into()],
            scope: scope.into(),
        };
        Change { info, observed: Arc::new(Observation::create("missing", Attrs::new())) }
    }

    #[test]
    fn a_plan_over_several_accounts_has_a_section_per_account_and_region() {
        let plan = Plan {
            goal: Goal::Provision,
            changes: vec![
                change("ECS cluster", "c", "a", "111111111111/us-east-1"),
                change("IAM user", "u", "a", "111111111111"),
                change("ECS cluster", "c", "b", "222222222222/eu-west-1"),
                change("block", "a-aws-credentials", "a", ""),
                change("IAM user", "u", "b", "222222222222"),
            ],
        };
        let header = PlanHeader {
            pools: vec![("a".into(), "ecs:push".into()), ("b".into(), "ecs:push".into())],
            prefect: "http://127.0.0.1:4200/api".into(),
            targets: vec!["AWS account 111111111111, region us-east-1".into(), "AWS account 222222222222, region eu-west-1".into()],
        };
        let text = render_markdown(&header, &plan);
        let sections: Vec<&str> = text.lines().filter(|l| l.starts_with("#### ")).collect();
        assert_eq!(
            sections,
            ["#### `111111111111` (all regions)", "#### `111111111111/us-east-1`", "#### `222222222222` (all regions)", "#### `222222222222/eu-west-1`", "#### Prefect"]
        );
        let b_section = text.split("#### `222222222222/eu-west-1`").nth(1).and_then(|rest| rest.split("####").next()).unwrap_or_default();
        assert!(b_section.contains("| ECS cluster | `c` | b |") && !b_section.contains("| a |"), "{b_section}");
        let one = PlanHeader { targets: vec!["AWS account 111111111111, region us-east-1".into()], ..header };
        assert!(!render_markdown(&one, &plan).contains("####"), "one target: one table, as before");
    }
}
