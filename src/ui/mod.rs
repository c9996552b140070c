//! The console: the plan's summary box, the confirmation, progress, and final report.
//! The plan and report go to stdout; notes, errors and progress to stderr. Whether they are
//! coloured is decided once, by [`Console::detect`].

mod color;
mod markdown;
mod progress;
mod summary;

#[cfg(test)]
mod snapshot_tests;

use std::io::IsTerminal;

pub use color::ColorChoice;
pub use progress::ProgressView;
pub use markdown::render_markdown;
pub use summary::{PlanHeader, render_applied, render_nothing_left, render_plan, render_torn_down};

/// How a plan is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The summary box, for people at a terminal.
    Text,
    /// The plan document (`schemas/plan.v2.json`), for programs.
    Json,
    /// A pull request comment.
    Markdown,
}

impl Format {
    /// The format's name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Markdown => "markdown",
        }
    }
}

use crate::engine::Plan;
use crate::error::{Error, Result};

/// The width of the plan's box when stdout is not a terminal and `COLUMNS` is not set.
pub const PIPE_WIDTH: u16 = 120;

/// Where output goes and whether a person is there to answer.
pub struct Console {
    interactive: bool,
    width: Option<u16>,
    stderr_terminal: bool,
}

impl Console {
    /// Detects terminals: interactive only when both stdin and stdout are terminals; and
    /// decides, from `color` and NO_COLOR, whether stdout and stderr are coloured.
    pub fn detect(color: ColorChoice) -> Self {
        color.apply();
        let stdout = std::io::stdout().is_terminal();
        // Logs and pipes get `COLUMNS` or a fixed width, so that long reasons wrap instead of
        // making the box hundreds of columns wide.
        let width = if stdout {
            console::Term::stdout().size_checked().map(|(_, w)| w)
        } else {
            Some(std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(PIPE_WIDTH))
        };
        Self { interactive: stdout && std::io::stdin().is_terminal(), width, stderr_terminal: std::io::stderr().is_terminal() }
    }

    /// True when a question can be answered.
    pub fn interactive(&self) -> bool {
        self.interactive
    }

    /// A line of output.
    pub fn line(&self, text: &str) {
        println!("{text}");
    }

    /// Output written as it is, without a line end added: a generated file such as a
    /// completion script.
    pub fn raw(&self, text: &str) {
        print!("{text}");
    }

    /// A note that is not the main output.
    pub fn note(&self, text: &str) {
        eprintln!("{} {text}", color::note_prefix());
    }

    /// The error a run ends with.
    pub fn error(&self, error: &Error) {
        eprintln!("{} {error}", color::error_prefix());
    }

    /// Shows the plan.
    pub fn plan(&self, header: &PlanHeader, plan: &Plan) {
        print!("{}", render_plan(header, plan, self.width, console::colors_enabled()));
    }

    /// Asks a yes/no question; there is no default, the answer must be given. dialoguer's
    /// default theme writes no colour, so the question is the same whatever the decision.
    pub fn confirm(&self, prompt: &str) -> Result<bool> {
        dialoguer::Confirm::new()
            .with_prompt(prompt)
            .interact()
            .map_err(|e| Error::usage("confirmation", e.to_string()))
    }

    /// The progress display for applying `plan`.
    pub fn progress(&self, plan: &Plan) -> ProgressView {
        let steps = plan.changes.iter().filter(|c| c.observed.action.writes()).count();
        ProgressView::new(steps, self.stderr_terminal)
    }

    /// Shows the plan as Markdown.
    pub fn markdown(&self, header: &PlanHeader, plan: &Plan) {
        print!("{}", render_markdown(header, plan));
    }

    /// The report of a teardown.
    pub fn torn_down(&self, plan: &Plan) {
        print!("{}", render_torn_down(plan));
    }

    /// The final report; `repositories` are where images go, `guides` what to do next
    /// (title, text).
    pub fn applied(&self, header: &PlanHeader, plan: &Plan, repositories: &[String], guides: &[(String, String)]) {
        print!("{}", render_applied(header, plan, repositories, guides));
    }
}
