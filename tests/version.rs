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
