//! The GitHub Action's install step (`action/install.sh`): which release and archive a runner gets,
//! and that an archive is unpacked only when its SHA-256 matches the release's `.sha256`. A fake
//! `curl` (tests/action/curl) serves a release from a directory; a fake `gh` names the latest tag.
#![cfg(unix)]

mod github_step;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use github_step::Step;

struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Runner {
        let runner = Runner { dir: tempfile::tempdir().unwrap() };
        let bin = runner.path("bin");
        fs::create_dir_all(&bin).unwrap();
        for fake in ["curl", "gh"] {
            symlink(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/action").join(fake), bin.join(fake)).unwrap();
        }
        fs::create_dir_all(runner.path("releases")).unwrap();
        runner
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, command: &str, env: &[(&str, &str)]) -> Step {
        let mut run = Command::new("bash");
        run.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("action/install.sh"))
            .arg(command)
            .env_clear()
            .env("PATH", format!("{}:{}", self.path("bin").display(), std::env::var("PATH").unwrap_or_default()))
            .env("HOME", self.dir.path())
            .env("RUNNER_TOOL_CACHE", self.path("tool-cache"))
            .env("PUSHPOOL_REPOSITORY", "pushpool/pushpool")
            .env("FAKE_RELEASES", self.path("releases"))
            .env("FAKE_CURL_LOG", self.path("curl-log"))
            .env("FAKE_GH_STATE", self.path("gh-state.json"))
            .env("FAKE_GH_LOG", self.path("gh-log.jsonl"))
            .env("GITHUB_REPOSITORY", "octo/infra");
        for (key, value) in env {
            run.env(key, value);
        }
        github_step::run(&mut run, self.dir.path())
    }

    /// Publishes pushpool-TARGET.tar.gz for `version` (a script that prints its version, in the
    /// archive's top directory, as dist lays it out) and its .sha256, which `corrupt` spoils.
    fn publish(&self, version: &str, target: &str, corrupt: bool) {
        let stage = self.path(&format!("stage/pushpool-{target}"));
        fs::create_dir_all(&stage).unwrap();
        let binary = stage.join("pushpool");
        fs::write(&binary, format!("#!/bin/sh\necho pushpool {version}\n")).unwrap();
        fs::set_permissions(&binary, fs::Permissions::from_mode(0o755)).unwrap();
        let release = self.path(&format!("releases/v{version}"));
        fs::create_dir_all(&release).unwrap();
        let archive = release.join(format!("pushpool-{target}.tar.gz"));
        let tar = Command::new("tar").arg("-czf").arg(&archive).arg("-C").arg(self.path("stage")).arg(format!("pushpool-{target}")).status().unwrap();
        assert!(tar.success());
        let sum = Command::new("sha256sum").arg(&archive).output().unwrap();
        let mut hash = String::from_utf8(sum.stdout).unwrap().split(' ').next().unwrap().to_owned();
        if corrupt {
            hash = hash.replace(&hash[..4], "0000");
        }
        fs::write(release.join(format!("pushpool-{target}.tar.gz.sha256")), format!("{hash} *pushpool-{target}.tar.gz\n")).unwrap();
    }
}

#[test]
fn each_runner_gets_its_target_and_archive() {
    let runner = Runner::new();
    let cases = [
        ("Linux", "X64", "x86_64-unknown-linux-gnu", "pushpool-x86_64-unknown-linux-gnu.tar.gz"),
        ("Linux", "ARM64", "aarch64-unknown-linux-gnu", "pushpool-aarch64-unknown-linux-gnu.tar.gz"),
        ("macOS", "X64", "x86_64-apple-darwin", "pushpool-x86_64-apple-darwin.tar.gz"),
        ("macOS", "ARM64", "aarch64-apple-darwin", "pushpool-aarch64-apple-darwin.tar.gz"),
        ("Windows", "X64", "x86_64-pc-windows-msvc", "pushpool-x86_64-pc-windows-msvc.zip"),
    ];
    for (os, arch, target, archive) in cases {
        let step = runner.run("resolve", &[("RUNNER_OS", os), ("RUNNER_ARCH", arch), ("PUSHPOOL_VERSION", "0.2.0")]);
        assert_eq!(step.status, 0, "{os} {arch}: {}", step.stderr);
        assert_eq!(step.outputs["target"], target);
        assert_eq!(step.outputs["archive"], archive);
        assert_eq!(step.outputs["version"], "0.2.0");
        assert_eq!(step.outputs["dir"], runner.path(&format!("tool-cache/pushpool/0.2.0/{target}")).display().to_string());
    }
    let step = runner.run("resolve", &[("RUNNER_OS", "Linux"), ("RUNNER_ARCH", "ARM"), ("PUSHPOOL_VERSION", "0.2.0")]);
    assert_eq!(step.status, 1);
    assert!(step.stderr.contains("no pushpool release for a Linux ARM runner") && step.stderr.contains("pip install pushpool"), "{}", step.stderr);
}

#[test]
fn the_version_comes_from_the_input_else_the_action_tag_else_the_latest_release() {
    let runner = Runner::new();
    let linux = [("RUNNER_OS", "Linux"), ("RUNNER_ARCH", "X64")];
    let with = |extra: &[(&'static str, &'static str)]| runner.run("resolve", &[&linux[..], extra].concat()).outputs.get("version").cloned().unwrap_or_default();
    assert_eq!(with(&[("PUSHPOOL_VERSION", "v0.3.1"), ("PUSHPOOL_ACTION_REF", "v0.2.0")]), "0.3.1", "the input first, without its v");
    assert_eq!(with(&[("PUSHPOOL_ACTION_REF", "v0.2.0")]), "0.2.0", "uses: pushpool/pushpool@v0.2.0");
    assert_eq!(with(&[("PUSHPOOL_ACTION_REF", "v0"), ("FAKE_GH_LATEST_TAG", "v0.4.0")]), "0.4.0", "a major tag or a branch: the latest release");
    let step = runner.run("resolve", &[&linux[..], &[("PUSHPOOL_VERSION", "latest; rm -rf /")]].concat());
    assert_eq!(step.status, 1);
    assert!(step.stderr.contains("is not a release version like 0.2.0"), "{}", step.stderr);
}

#[test]
fn an_archive_is_installed_only_when_its_checksum_matches() {
    let runner = Runner::new();
    let target = "x86_64-unknown-linux-gnu";
    runner.publish("0.2.0", target, false);
    let dir = runner.path("tool-cache/pushpool/0.2.0/x86_64-unknown-linux-gnu");
    let env = |version: &'static str, dir: &Path| -> Vec<(&'static str, String)> {
        vec![("VERSION", version.into()), ("TARGET", target.into()), ("ARCHIVE", format!("pushpool-{target}.tar.gz")), ("DIR", dir.display().to_string())]
    };
    let good = env("0.2.0", &dir);
    let step = runner.run("download", &good.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    assert_eq!(step.status, 0, "{}", step.stderr);
    let ran = Command::new(dir.join("pushpool")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "pushpool 0.2.0\n", "the archive's binary, executable, in the cache directory");
    let log = fs::read_to_string(runner.path("curl-log")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            format!("https://github.com/pushpool/pushpool/releases/download/v0.2.0/pushpool-{target}.tar.gz"),
            format!("https://github.com/pushpool/pushpool/releases/download/v0.2.0/pushpool-{target}.tar.gz.sha256"),
        ]
    );

    runner.publish("0.2.1", target, true);
    let bad_dir = runner.path("tool-cache/pushpool/0.2.1/x86_64-unknown-linux-gnu");
    let bad = env("0.2.1", &bad_dir);
    let step = runner.run("download", &bad.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    assert_eq!(step.status, 1, "a checksum mismatch fails the step");
    assert!(step.stderr.contains("checksum mismatch for pushpool-x86_64-unknown-linux-gnu.tar.gz") && step.stderr.contains("not installing it"), "{}", step.stderr);
    assert!(!bad_dir.join("pushpool").exists(), "nothing installed from a corrupt archive");

    let missing = env("9.9.9", &runner.path("tool-cache/pushpool/9.9.9"));
    let step = runner.run("download", &missing.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    assert_eq!(step.status, 1);
    assert!(step.stderr.contains("is there a release v9.9.9 with an archive for x86_64-unknown-linux-gnu?"), "{}", step.stderr);
}

#[test]
fn the_repository_and_tag_come_from_the_action_path_when_the_context_is_empty() {
    let runner = Runner::new();
    for (os, path) in [("Linux", "/home/runner/work/_actions/octo/pushpool/v0.5.0"), ("Windows", r"D:\a\_actions\octo\pushpool\v0.5.0")] {
        // github.action_repository is empty in a composite action, so the step's env has "".
        let step = runner.run("resolve", &[("RUNNER_OS", os), ("RUNNER_ARCH", "X64"), ("PUSHPOOL_REPOSITORY", ""), ("GITHUB_ACTION_PATH", path)]);
        assert_eq!(step.status, 0, "{path}: {}", step.stderr);
        assert_eq!(step.outputs["repository"], "octo/pushpool", "{path}");
        assert_eq!(step.outputs["version"], "0.5.0", "{path}");
    }
    let step = runner.run("resolve", &[("RUNNER_OS", "Linux"), ("RUNNER_ARCH", "X64"), ("PUSHPOOL_REPOSITORY", ""), ("PUSHPOOL_VERSION", "0.2.0")]);
    assert_eq!(step.status, 1);
    assert!(step.stderr.contains("the repository of the pushpool action is unknown"), "{}", step.stderr);
}
