//! The plan as Markdown, for a pull request comment: a summary line, a table of the
//! changes, and the unchanged resources and job variables folded away in `<details>`.

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
        let _ = writeln!(
            out,
            "| {action} | {} | `{}` |{pools} {} |",
            cell(&change.info.label),
            cell(&change.info.name),
            cell(&change.observed.reason)
        );
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
