//! `pushpool --version`: "pushpool VERSION (COMMIT DATE, TARGET)" from a git checkout, so that a
//! bug report names the exact build; "pushpool VERSION (TARGET)" where build.rs found no git.

use std::process::Command;

fn version_line() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pushpool")).arg("--version").output().expect("pushpool runs");
    assert!(out.status.success(), "--version failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("--version prints UTF-8")
}

/// HEAD's short hash and commit date, when this test runs in a checkout with git on PATH.
fn head() -> Option<(String, String)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("git").args(["-C", root, "log", "-1", "--format=%h %cs", "--abbrev=7"]).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (hash, date) = text.trim().split_once(' ')?;
    (out.status.success() && std::path::Path::new(root).join(".git").exists()).then(|| (hash.to_owned(), date.to_owned()))
}

#[test]
fn version_names_the_version_commit_date_and_target() {
    let line = version_line();
    assert!(line.ends_with(")\n") && line.lines().count() == 1, "one line ending in ')': {line:?}");
    let rest = line.strip_prefix(concat!("pushpool ", env!("CARGO_PKG_VERSION"), " (")).unwrap_or_else(|| panic!("name and version first: {line:?}"));
    let detail = rest.trim_end().trim_end_matches(')');
    let target = match head() {
        Some((hash, date)) => {
            let (build, target) = detail.split_once(", ").unwrap_or_else(|| panic!("commit and date before the target: {line:?}"));
            assert_eq!(build, format!("{hash} {date}"), "the commit and date of HEAD: {line:?}");
            assert!(date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-', "a YYYY-MM-DD date: {line:?}");
            target
        }
        None => detail,
    };
    // A target triple: the architecture first, the operating system in it (x86_64-unknown-linux-gnu).
    let (arch, os) = (std::env::consts::ARCH, std::env::consts::OS);
    let os_in_triple = if os == "macos" { "darwin" } else { os };
    assert!(target.starts_with(arch) && target.contains(os_in_triple) && target.split('-').count() >= 3, "the target triple of {arch}/{os}: {line:?}");
}

#[test]
fn short_flag_prints_the_same() {
    let out = Command::new(env!("CARGO_BIN_EXE_pushpool")).arg("-V").output().expect("pushpool runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), version_line());
}

/// build.rs compiled on its own and run the way cargo runs it, in `root` (no cargo involved).
fn build_script(root: &std::path::Path) -> (String, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let exe = out.path().join("build-script");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let built = Command::new(rustc).args(["--edition", "2024", "-o"]).arg(&exe).arg(concat!(env!("CARGO_MANIFEST_DIR"), "/build.rs")).output().expect("rustc runs");
    assert!(built.status.success(), "build.rs compiles: {}", String::from_utf8_lossy(&built.stderr));
    let ran = Command::new(&exe).env("TARGET", "riscv64gc-unknown-linux-gnu").env("CARGO_MANIFEST_DIR", root).output().unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let lines: Vec<String> = String::from_utf8(ran.stdout).unwrap().lines().map(str::to_owned).collect();
    let detail = lines.iter().find_map(|l| l.strip_prefix("cargo:rustc-env=PUSHPOOL_BUILD_DETAIL=")).expect("the detail is set").to_owned();
    let watched = lines.iter().filter_map(|l| l.strip_prefix("cargo:rerun-if-changed=")).map(str::to_owned).collect();
    (detail, watched)
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_COMMITTER_DATE", "2026-03-04T05:06:07Z")
        .env("GIT_AUTHOR_DATE", "2026-03-04T05:06:07Z")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn build_script_without_git_names_the_target_only_and_watches_nothing_missing() {
    let root = tempfile::tempdir().unwrap(); // a crate unpacked from crates.io or an sdist
    let (detail, watched) = build_script(root.path());
    assert_eq!(detail, "riscv64gc-unknown-linux-gnu");
    assert_eq!(watched, ["build.rs"], "a missing file would make cargo rerun the script on every build");
}

#[test]
fn build_script_reads_loose_and_packed_refs_and_linked_worktrees() {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one"]);
    let head = git(&repo, &["rev-parse", "--short=7", "HEAD"]);

    let (detail, watched) = build_script(&repo);
    assert_eq!(detail, format!("{head} 2026-03-04, riscv64gc-unknown-linux-gnu"), "a loose ref");
    let git_dir = repo.join(".git");
    for file in ["HEAD", "logs/HEAD", "refs/heads/main"] {
        assert!(watched.contains(&git_dir.join(file).display().to_string()), "watches {file}: {watched:?}");
    }

    git(&repo, &["pack-refs", "--all"]);
    let (detail, watched) = build_script(&repo);
    assert_eq!(detail, format!("{head} 2026-03-04, riscv64gc-unknown-linux-gnu"), "a packed ref");
    assert!(watched.contains(&git_dir.join("packed-refs").display().to_string()), "{watched:?}");
    assert!(watched.iter().all(|path| std::path::Path::new(path).exists() || path == "build.rs"), "only files that exist: {watched:?}");

    let worktree = root.path().join("worktree");
    git(&repo, &["worktree", "add", "-q", "-b", "side", worktree.to_str().unwrap()]);
    git(&worktree, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "two"]);
    let side = git(&worktree, &["rev-parse", "--short=7", "HEAD"]);
    assert_ne!(side, head);
    let (detail, _) = build_script(&worktree);
    assert_eq!(detail, format!("{side} 2026-03-04, riscv64gc-unknown-linux-gnu"), "a linked worktree's own HEAD");
}
