//! The console: the plan's summary box, the confirmation, progress, and final report.
//! The plan and report go to stdout; notes, errors and progress to stderr. Whether they are
//! coloured is decided once, by [`Console::detect`].

mod color;
mod markdown;
mod pool_progress;
mod progress;
mod summary;

#[cfg(test)]
mod snapshot_tests;

use std::io::{IsTerminal, Write};

pub use color::ColorChoice;
pub use markdown::render_markdown;
pub use pool_progress::PoolProgress;
pub use progress::ProgressView;
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

use crate::engine::{Plan, Progress};
use crate::error::{Error, ErrorKind, Result};
use crate::redact::redact_urls;

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
    pub fn line(&self, text: &str) -> Result<()> {
        self.raw(&format!("{text}\n"))
    }

    /// Output written as it is, without a line end added: a generated file such as a
    /// completion script. Every write to stdout goes through here; see [`stdout_closed`]; and
    /// every URL's credentials are redacted ([`redact_urls`]), wherever the URL came from.
    pub fn raw(&self, text: &str) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(redact_urls(text).as_bytes()).and_then(|()| stdout.flush()).map_err(|e| stdout_closed(&e))
    }

    /// A note that is not the main output. A closed stderr loses it rather than stopping a
    /// run that may be applying: notes are for a reader, and there is none.
    pub fn note(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{} {}", color::note_prefix(), redact_urls(text));
    }

    /// The error a run ends with (lost, like a note, when stderr is closed).
    pub fn error(&self, error: &Error) {
        let _ = writeln!(std::io::stderr(), "{} {}", color::error_prefix(), redact_urls(&error.to_string()));
    }

    /// Shows the plan.
    pub fn plan(&self, header: &PlanHeader, plan: &Plan) -> Result<()> {
        self.raw(&render_plan(header, plan, self.width, console::colors_enabled()))
    }

    /// Asks a yes/no question; there is no default, the answer must be given. dialoguer's
    /// default theme writes no colour, so the question is the same whatever the decision.
    pub fn confirm(&self, prompt: &str) -> Result<bool> {
        dialoguer::Confirm::new().with_prompt(prompt).interact().map_err(|e| Error::usage("confirmation", e.to_string()))
    }

    /// The progress display for applying `plan`: by pool when it writes for several (a pools
    /// file), else by step.
    pub fn progress(&self, plan: &Plan) -> Box<dyn Progress> {
        if PoolProgress::pools_in(plan) > 1 {
            return Box::new(PoolProgress::new(plan, self.stderr_terminal));
        }
        let steps = plan.changes.iter().filter(|c| c.observed.action.writes()).count();
        Box::new(ProgressView::new(steps, self.stderr_terminal))
    }

    /// Shows the plan as Markdown.
    pub fn markdown(&self, header: &PlanHeader, plan: &Plan) -> Result<()> {
        self.raw(&render_markdown(header, plan))
    }

    /// The report of a teardown.
    pub fn torn_down(&self, plan: &Plan) -> Result<()> {
        self.raw(&render_torn_down(plan))
    }

    /// The final report; `repositories` are where images go, `guides` what to do next
    /// (title, text).
    pub fn applied(&self, header: &PlanHeader, plan: &Plan, repositories: &[String], guides: &[(String, String)]) -> Result<()> {
        self.raw(&render_applied(header, plan, repositories, guides))
    }
}

/// The error a failed write to stdout ends the run with. A reader that went away (`pushpool
/// plan | head -1`) is a broken pipe: the run stops quietly with [`ErrorKind::StdoutClosed`],
/// whose exit status is 0, as ripgrep and uv do. The Unix convention is that a writer whose
/// reader left simply stops (SIGPIPE), and a shell pipeline's status is the last command's, so
/// nothing is gained by reporting what the reader chose not to read; Rust ignores SIGPIPE, so
/// without this `println!` panics (exit 101). The error still unwinds through the run, so an
/// apply's locks are released as after any other failure. Any other write failure (a full
/// disk) is an error naming stdout.
pub fn stdout_closed(error: &std::io::Error) -> Error {
    match error.kind() {
        std::io::ErrorKind::BrokenPipe => Error::usage("stdout", "closed by its reader").kind(ErrorKind::StdoutClosed),
        _ => Error::usage("stdout", format!("cannot be written: {error}")).fix("check where stdout is redirected (a full disk, a closed file)"),
    }
}
