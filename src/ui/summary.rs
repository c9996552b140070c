//! The plan as a summary box, and the final report after apply.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use console::Style;
use serde_json::Value;

use super::color::paint;
use crate::engine::{Action, Goal, Plan};

/// Who and where a plan is for, shown above it.
#[derive(Debug, Clone)]
pub struct PlanHeader {
    /// Each pool's name and type.
    pub pools: Vec<(String, String)>,
    /// The Prefect API URL.
    pub prefect: String,
    /// The cloud accounts and regions, e.g. "AWS account 123456789012, region us-east-1".
    pub targets: Vec<String>,
}

impl PlanHeader {
    /// "work pool 'a' (ecs:push)" or "work pools 'a' (ecs:push), 'b' (ecs)".
    pub fn pools_line(&self) -> String {
        let listed: Vec<String> = self.pools.iter().map(|(name, kind)| format!("'{name}' ({kind})")).collect();
        let noun = if self.pools.len() == 1 { "Work pool" } else { "Work pools" };
        format!("{noun} {}", listed.join(", "))
    }

    /// True when the plan covers several pools, so rows say which pools use them.
    pub fn several(&self) -> bool {
        self.pools.len() > 1
    }
}

/// Each pool node's job variable defaults, by pool name, in plan order.
pub fn job_variables(plan: &Plan) -> Vec<(&str, &serde_json::Map<String, Value>)> {
    plan.changes
        .iter()
        .filter(|c| c.info.kind == "prefect.work_pool")
        .filter_map(|c| Some((c.info.name.as_str(), c.observed.attrs.value("job_variables")?.as_object()?)))
        .filter(|(_, variables)| !variables.is_empty())
        .collect()
}

/// A value as a plan shows it: strings bare, everything else as JSON.
pub fn shown(value: &Value) -> String {
    value.as_str().map(str::to_owned).unwrap_or_else(|| value.to_string())
}

/// Renders the plan: a header, a box with one row per resource grouped by system, each
/// group in dependency order (the order apply follows), the pool's job variables and a
/// count line. `width` wraps the box to a terminal; None never wraps. `color` colours the
/// action words (create green, update yellow, delete red); without it the text is plain.
pub fn render_plan(header: &PlanHeader, plan: &Plan, width: Option<u16>, color: bool) -> String {
    let title = match plan.goal {
        Goal::Provision => header.pools_line(),
        Goal::Teardown => format!("Teardown of {}", lowercase_first(&header.pools_line())),
    };
    let mut out = format!("{title}\n  Prefect: {}\n", header.prefect);
    for target in &header.targets {
        out.push_str(&format!("  Target:  {target}\n"));
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED.with_rounded_corners());
    match width {
        Some(width) => table.set_content_arrangement(ContentArrangement::Dynamic).set_width(width),
        None => table.set_content_arrangement(ContentArrangement::Disabled),
    };
    let several = header.several();
    let mut columns = vec!["", "Action", "Resource", "Name"];
    if several {
        columns.push("Pools");
    }
    columns.push("Why");
    table.set_header(columns);
    let mut systems: Vec<&str> = Vec::new();
    for change in &plan.changes {
        if !systems.contains(&change.info.system()) {
            systems.push(change.info.system());
        }
    }
    for system in systems {
        let mut first = true;
        for change in plan.changes.iter().filter(|c| c.info.system() == system) {
            let shown = if first { system } else { "" };
            first = false;
            let pools = change.info.pools.join(", ");
            let action = action_word(change.observed.action, color);
            let mut row = vec![shown, &action, &change.info.label, &change.info.name];
            if several {
                row.push(&pools);
            }
            row.push(&change.observed.reason);
            table.add_row(row);
        }
    }
    out.push('\n');
    out.push_str(&table.to_string());
    out.push('\n');
    for (pool, variables) in job_variables(plan) {
        match several {
            true => out.push_str(&format!("\nJob variable defaults of '{pool}':\n")),
            false => out.push_str("\nJob variable defaults:\n"),
        }
        for (name, value) in variables {
            out.push_str(&format!("  {name} = {}\n", shown(value)));
        }
    }
    out.push_str(&format!("\nPlan: {}.\n", tally(plan).join(", ")));
    out
}

/// The plan's counts in words: "13 to create, 1 to update, 0 to reuse"; for a teardown
/// "6 to delete, 3 to keep, 2 gone" (and the updates of a kept pool, if any).
pub fn tally(plan: &Plan) -> Vec<String> {
    let counts: &[(Action, &str)] = match plan.goal {
        Goal::Provision => &[(Action::Create, "to create"), (Action::Update, "to update"), (Action::Reuse, "to reuse")],
        Goal::Teardown => &[(Action::Delete, "to delete"), (Action::Update, "to update"), (Action::Keep, "to keep"), (Action::Gone, "gone")],
    };
    counts
        .iter()
        .filter(|(action, _)| plan.goal == Goal::Provision || *action != Action::Update || plan.count(Action::Update) > 0)
        .map(|(action, words)| format!("{} {words}", plan.count(*action)))
        .collect()
}

/// An action as the box shows it, coloured when `color` and the action changes something.
fn action_word(action: Action, color: bool) -> String {
    let (word, style) = match action {
        Action::Create => ("+ create", Style::new().green()),
        Action::Update => ("~ update", Style::new().yellow()),
        Action::Delete => ("- delete", Style::new().red()),
        Action::Reuse => ("  reuse", Style::new()),
        Action::Keep => ("  keep", Style::new()),
        Action::Gone => ("  gone", Style::new()),
    };
    paint(word, style, color)
}

/// "Work pool 'a'" → "work pool 'a'", for use inside a sentence.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// The report after a successful apply: what was done and what to do next.
pub fn render_applied(header: &PlanHeader, plan: &Plan, repositories: &[String], guides: &[(String, String)]) -> String {
    let mut out = String::from("\nInfrastructure successfully provisioned!\n");
    out.push_str(&format!("  {} created, {} updated, {} reused\n", plan.count(Action::Create), plan.count(Action::Update), plan.count(Action::Reuse)));
    for pool in plan.changes.iter().filter(|c| c.info.kind == "prefect.work_pool") {
        match pool.observed.action {
            Action::Create => out.push_str(&format!("Created work pool '{}'!\n", pool.info.name)),
            Action::Update => out.push_str(&format!("Updated work pool '{}'!\n", pool.info.name)),
            _ => {}
        }
    }
    out.push_str("\nNext steps:\n");
    for repository in repositories {
        out.push_str(&format!("  Build and push a flow image: docker build -t {repository}:latest . && docker push {repository}:latest\n"));
    }
    for (pool, _) in &header.pools {
        out.push_str(&format!("  Deploy a flow to the pool: prefect deploy --pool {pool}\n"));
    }
    for (title, text) in guides {
        out.push_str(&format!("\n{title}:\n"));
        for line in text.trim_matches('\n').lines() {
            out.push_str(&format!("    {line}\n").replace("    \n", "\n"));
        }
    }
    out
}

/// The report after a successful teardown: what went and what stayed, and why.
pub fn render_torn_down(plan: &Plan) -> String {
    let mut out = format!("\nTeardown complete: {} deleted", plan.count(Action::Delete));
    if plan.count(Action::Update) > 0 {
        out.push_str(&format!(", {} updated", plan.count(Action::Update)));
    }
    out.push_str(&format!(", {} kept.\n", plan.count(Action::Keep)));
    out.push_str(&kept_lines(plan));
    out
}

/// What a teardown with nothing to delete says for `pools` ("'a', 'b'"), with what stays.
pub fn render_nothing_left(pools: &str, plan: &Plan) -> String {
    format!("Nothing to delete: nothing pushpool built for work pool {pools} is left.\n{}", kept_lines(plan))
}

/// One line per resource a teardown keeps, with the reason.
fn kept_lines(plan: &Plan) -> String {
    plan.changes
        .iter()
        .filter(|c| c.observed.action == Action::Keep)
        .map(|kept| format!("  kept {} {}: {}\n", kept.info.label, kept.info.name, kept.observed.reason))
        .collect()
}
