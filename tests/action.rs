//! The GitHub Action's plan step (`action/plan.sh`) run here as GitHub would run it: a fake `gh`
//! (tests/action/gh) that serves and edits the pull request's comments, a fake `pushpool`
//! (tests/action/pushpool) that prints a given plan and exits 0, 1 or 2, and the `GITHUB_*` files
//! and event a runner provides. Proves the comment body, one sticky comment edited on the next run
//! (never a second one), the outputs, the job summary and the exit status for each plan result;
//! one case runs the real binary.
// The step runs under bash on every runner; here it is run on Unix (fake gh and pushpool scripts).
#![cfg(unix)]

mod github_step;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use github_step::Step;
use serde_json::{Value, json};

const REPO: &str = "octo/infra";
const MARKER: &str = "<!-- pushpool-plan: pools.toml -->";
const PLAN_MD: &str = "### pushpool plan\n\n| pool | change |\n|---|---|\n| my-ecs-pool | create 11 |\n";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/action")
}

/// One pull request's world: a runner's temp dir, its event, the fake gh's comment state.
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new(event: Value) -> Runner {
        let dir = tempfile::tempdir().expect("a temp dir");
        fs::write(dir.path().join("event.json"), event.to_string()).unwrap();
        fs::create_dir(dir.path().join("repo")).unwrap();
        fs::write(dir.path().join("repo/pools.toml"), "# the pools\n").unwrap();
        Runner { dir }
    }

    fn pull_request() -> Runner {
        Runner::new(json!({ "pull_request": { "number": 7 } }))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn comments(&self) -> Vec<Value> {
        let state: Value = serde_json::from_str(&fs::read_to_string(self.path("gh-state.json")).unwrap_or_else(|_| r#"{"comments":[]}"#.into())).unwrap();
        state["comments"].as_array().unwrap().clone()
    }

    fn seed_comments(&self, comments: Value) {
        fs::write(self.path("gh-state.json"), json!({ "comments": comments }).to_string()).unwrap();
    }

    fn gh_calls(&self) -> Vec<Value> {
        fs::read_to_string(self.path("gh-log.jsonl")).unwrap_or_default().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    /// Runs action/plan.sh with the fake `gh` and `pushpool` first on PATH, and the fake
    /// pushpool's behaviour and the step's inputs from `env`.
    fn run(&self, env: &[(&str, &str)]) -> Step {
        let bin = self.path("bin");
        let _ = fs::remove_dir_all(&bin);
        fs::create_dir(&bin).unwrap();
        symlink(fixtures().join("gh"), bin.join("gh")).unwrap();
        symlink(fixtures().join("pushpool"), bin.join("pushpool")).unwrap();
        let temp = self.path("runner-temp");
        fs::create_dir_all(&temp).unwrap();
        let mut command = Command::new("bash");
        command
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("action/plan.sh"))
            .env_clear()
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default()))
            .env("HOME", self.dir.path())
            .env("GITHUB_EVENT_PATH", self.path("event.json"))
            .env("GITHUB_REPOSITORY", REPO)
            .env("RUNNER_TEMP", &temp)
            .env("GH_TOKEN", "test-token")
            .env("FAKE_GH_STATE", self.path("gh-state.json"))
            .env("FAKE_GH_LOG", self.path("gh-log.jsonl"))
            .env("FAKE_PUSHPOOL_ARGS", self.path("pushpool-args"))
            .env("PUSHPOOL_FILE", "pools.toml")
            .env("PUSHPOOL_COMMENT", "true")
            .env("PUSHPOOL_WORKING_DIRECTORY", self.path("repo"))
            .env("NO_COLOR", "1");
        for (key, value) in env {
            command.env(key, value);
        }
        github_step::run(&mut command, self.dir.path())
    }
}

fn fake(markdown: &str, exit: &str) -> Vec<(&'static str, String)> {
    vec![("FAKE_PUSHPOOL_MARKDOWN", markdown.to_owned()), ("FAKE_PUSHPOOL_EXIT", exit.to_owned()), ("FAKE_PUSHPOOL_JSON", r#"{"version":2,"pools":[]}"#.to_owned())]
}

fn env_of<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn changes_comment_the_plan_once_and_a_second_run_edits_that_comment() {
    let runner = Runner::pull_request();
    // Someone else's comments, one of them on the second page, are never touched.
    runner.seed_comments(json!([{ "id": 1, "body": "looks good" }, { "id": 2, "body": "what does this create?" }, { "id": 3, "body": "a quote: pushpool-plan" }]));

    let first = runner.run(&env_of(&fake(PLAN_MD, "2")));
    assert_eq!(first.status, 0, "changes pending is a successful plan: {}", first.stderr);
    assert_eq!(first.outputs["changes"], "true");
    assert_eq!(first.outputs["exit-code"], "2");
    let plan = PathBuf::from(&first.outputs["plan"]);
    assert_eq!(fs::read_to_string(&plan).unwrap(), r#"{"version":2,"pools":[]}"#, "the plan output names the JSON plan");
    assert!(first.summary.contains("| my-ecs-pool | create 11 |") && !first.summary.contains(MARKER), "the job summary has the plan: {}", first.summary);
    let args = fs::read_to_string(runner.path("pushpool-args")).unwrap();
    assert_eq!(args.lines().collect::<Vec<_>>(), ["plan", "--file", "pools.toml", "--output", "markdown", "--out", plan.to_str().unwrap(), "--detailed-exitcode"]);

    let comments = runner.comments();
    assert_eq!(comments.len(), 4, "one new comment: {comments:?}");
    let ours = &comments[3];
    assert_eq!(ours["body"], format!("{MARKER}\n{PLAN_MD}"), "the marker, then the plan as pushpool wrote it");

    // The next push: nothing left to change. The same comment is edited, no new one appears.
    let second = runner.run(&env_of(&fake("### pushpool plan\n\nNo changes.\n", "0")));
    assert_eq!(second.status, 0, "{}", second.stderr);
    assert_eq!(second.outputs["changes"], "false");
    let comments = runner.comments();
    assert_eq!(comments.len(), 4, "edited, not duplicated: {comments:?}");
    assert_eq!(comments[3]["id"], ours["id"]);
    assert_eq!(comments[3]["body"], format!("{MARKER}\n### pushpool plan\n\nNo changes.\n"));
    let others: Vec<&str> = comments[..3].iter().map(|c| c["body"].as_str().unwrap()).collect();
    assert_eq!(others, ["looks good", "what does this create?", "a quote: pushpool-plan"], "others' comments untouched");
    let methods: Vec<String> = runner
        .gh_calls()
        .iter()
        .map(|call| call["args"].as_array().unwrap().iter().skip_while(|a| *a != "--method").nth(1).map_or("GET".into(), |m| m.as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(methods, ["GET", "POST", "GET", "PATCH"]);
}

#[test]
fn a_failed_plan_fails_the_step_and_the_comment_says_why() {
    let runner = Runner::pull_request();
    let mut env = fake("", "1");
    env.push(("FAKE_PUSHPOOL_STDERR", "error: pools.toml line 3: pool type 'ecs:pushh' is not known; use one of ecs:push, …\n".into()));
    env.retain(|(k, _)| *k != "FAKE_PUSHPOOL_JSON");
    let step = runner.run(&env_of(&env));
    assert_eq!(step.status, 1, "a failed plan fails the step");
    assert_eq!(step.outputs["changes"], "false");
    assert_eq!(step.outputs["plan"], "", "no plan file when the plan failed");
    assert_eq!(step.outputs["exit-code"], "1");
    assert!(step.stderr.contains("::error title=pushpool plan::pushpool plan exited with status 1 for pools.toml"), "{}", step.stderr);
    let comments = runner.comments();
    assert_eq!(comments.len(), 1);
    let body = comments[0]["body"].as_str().unwrap();
    assert!(body.starts_with(MARKER), "{body}");
    assert!(body.contains("pushpool plan failed for `pools.toml`") && body.contains("exited with status 1"), "{body}");
    assert!(body.contains("pool type 'ecs:pushh' is not known"), "the comment quotes why: {body}");
    assert!(step.summary.contains("pool type 'ecs:pushh' is not known"), "{}", step.summary);
}

#[test]
fn no_changes_and_no_comment_asked_makes_no_call() {
    let runner = Runner::pull_request();
    let fake = fake("No changes.\n", "0");
    let mut env = env_of(&fake);
    env.push(("PUSHPOOL_COMMENT", "false"));
    env.push(("PUSHPOOL_ARGS", "--region eu-west-1  --color never"));
    let step = runner.run(&env);
    assert_eq!(step.status, 0, "{}", step.stderr);
    assert_eq!(step.outputs["changes"], "false");
    assert!(runner.gh_calls().is_empty(), "comment: false calls no gh");
    let args = fs::read_to_string(runner.path("pushpool-args")).unwrap();
    assert!(args.ends_with("--detailed-exitcode\n--region\neu-west-1\n--color\nnever\n"), "args split on whitespace and passed on: {args:?}");
}

#[test]
fn a_push_event_has_no_pull_request_to_comment_on() {
    let runner = Runner::new(json!({ "ref": "refs/heads/main" }));
    let step = runner.run(&env_of(&fake(PLAN_MD, "2")));
    assert_eq!(step.status, 0, "{}", step.stderr);
    assert!(runner.gh_calls().is_empty());
    assert!(step.summary.contains("my-ecs-pool"));
}

#[test]
fn a_comment_that_cannot_be_written_fails_the_step_naming_the_permission() {
    let runner = Runner::pull_request();
    let fake = fake(PLAN_MD, "2");
    let mut env = env_of(&fake);
    env.push(("FAKE_GH_FAIL", "1"));
    let step = runner.run(&env);
    assert_eq!(step.status, 1);
    assert!(step.stderr.contains("cannot list the comments of pull request #7") && step.stderr.contains("pull-requests: write"), "{}", step.stderr);
    assert_eq!(step.outputs["changes"], "true", "the outputs are set before the comment");
}

#[test]
fn the_real_binary_on_a_missing_pools_file_fails_and_says_so() {
    let runner = Runner::pull_request();
    // The binary the install step unpacked, named by PUSHPOOL_BIN (the fake on PATH would exit 0).
    let step = runner.run(&[("PUSHPOOL_FILE", "missing.toml"), ("PUSHPOOL_BIN", env!("CARGO_BIN_EXE_pushpool"))]);
    assert_eq!(step.status, 1, "{}", step.stderr);
    assert_eq!(step.outputs["exit-code"], "1");
    let comments = runner.comments();
    let body = comments[0]["body"].as_str().unwrap();
    assert!(body.starts_with("<!-- pushpool-plan: missing.toml -->"), "{body}");
    assert!(body.contains("missing.toml"), "pushpool's own error names the file: {body}");
}
