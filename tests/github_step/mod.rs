//! One step of a GitHub Actions job, run here as a runner runs it: the step's files
//! (`GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`) made empty in a directory of the test's, and what the
//! step left in them. Shared by the action's tests (tests/action.rs, tests/action_install.rs).
// Each test crate reads what its step writes: the install step writes no summary.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

/// What one run of a step left behind.
pub struct Step {
    pub status: i32,
    pub stderr: String,
    /// `GITHUB_OUTPUT`, each `key=value` line.
    pub outputs: HashMap<String, String>,
    /// `GITHUB_STEP_SUMMARY`.
    pub summary: String,
}

/// Runs `command` (the step, its environment set) with its `GITHUB_OUTPUT` and
/// `GITHUB_STEP_SUMMARY` files in `dir`, empty at the start.
pub fn run(command: &mut Command, dir: &Path) -> Step {
    let (output, summary) = (dir.join("github-output"), dir.join("step-summary"));
    fs::write(&output, "").unwrap();
    fs::write(&summary, "").unwrap();
    let out = command.env("GITHUB_OUTPUT", &output).env("GITHUB_STEP_SUMMARY", &summary).output().expect("bash runs the step");
    let outputs = fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|line| {
            let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("GITHUB_OUTPUT lines are key=value: {line:?}"));
            (key.to_owned(), value.to_owned())
        })
        .collect();
    Step { status: out.status.code().unwrap_or(-1), stderr: String::from_utf8_lossy(&out.stderr).into_owned(), outputs, summary: fs::read_to_string(&summary).unwrap() }
}
