//! Progress while applying: one line per step and a bar overall on a terminal, plain
//! lines otherwise (CI logs, pipes).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::engine::{NodeInfo, Progress};
use crate::error::Error;

/// The progress display of one apply.
pub struct ProgressView {
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    steps: Mutex<HashMap<String, ProgressBar>>,
}

impl ProgressView {
    /// A display for `total` steps; bars only when `terminal`.
    pub fn new(total: usize, terminal: bool) -> Self {
        if !terminal {
            return Self { bars: None };
        }
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} steps {elapsed}").expect("valid template"));
        Self { bars: Some(Bars { multi, overall, steps: Mutex::new(HashMap::new()) }) }
    }

    fn describe(info: &NodeInfo) -> String {
        format!("{} {}", info.label, info.name)
    }
}

impl Progress for ProgressView {
    fn started(&self, info: &NodeInfo) {
        let Some(bars) = &self.bars else { return };
        let step = bars.multi.insert_before(&bars.overall, ProgressBar::new_spinner());
        step.set_style(ProgressStyle::with_template("  {spinner} {msg}").expect("valid template"));
        step.set_message(Self::describe(info));
        step.enable_steady_tick(Duration::from_millis(100));
        bars.steps.lock().expect("not poisoned").insert(info.id.clone(), step);
    }

    fn waiting(&self, info: &NodeInfo, why: &str) {
        match &self.bars {
            Some(bars) => {
                if let Some(step) = bars.steps.lock().expect("not poisoned").get(&info.id) {
                    step.set_message(format!("{}: {why}", Self::describe(info)));
                }
            }
            None => stderr_line(&format!("  … {}: {why}", Self::describe(info))),
        }
    }

    fn finished(&self, info: &NodeInfo, result: Result<Duration, &Error>) {
        let line = match result {
            Ok(took) => format!("  ✓ {} ({:.1}s)", Self::describe(info), took.as_secs_f64()),
            Err(_) => format!("  ✗ {} failed", Self::describe(info)),
        };
        match &self.bars {
            Some(bars) => {
                if let Some(step) = bars.steps.lock().expect("not poisoned").remove(&info.id) {
                    step.set_style(ProgressStyle::with_template("{msg}").expect("valid template"));
                    step.finish_with_message(line);
                }
                bars.overall.inc(1);
            }
            None => stderr_line(&line),
        }
    }
}

impl Drop for ProgressView {
    fn drop(&mut self) {
        if let Some(bars) = &self.bars {
            bars.overall.finish();
        }
    }
}

/// A progress line on stderr; a closed stderr loses it (see [`super::Console::note`]).
pub(super) fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
