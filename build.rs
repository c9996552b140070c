//! Build facts for `pushpool --version`: the commit and its date when built from a git checkout,
//! and the target triple always, so that a bug report names exactly what was run.
//!
//! The commit is read from the `.git` files themselves (HEAD, the branch's ref, packed-refs), as
//! uv's build script does, so that `cargo:rerun-if-changed` can name exactly those files: the
//! script (and so the binary's link) reruns when HEAD moves, never because a source file changed.
//! Only the commit's date needs git itself (commit objects are compressed, usually in packs); without
//! git, or outside a checkout (the crate on crates.io, maturin's sdist), the version says less
//! rather than failing the build.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = env::var("TARGET").expect("cargo sets TARGET for build scripts");
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for build scripts"));
    let detail = match commit(&root) {
        Some((hash, Some(date))) => format!("{hash} {date}, {target}"),
        Some((hash, None)) => format!("{hash}, {target}"),
        None => target,
    };
    println!("cargo:rustc-env=PUSHPOOL_BUILD_DETAIL={detail}");
}

/// The short hash of HEAD and its commit date (YYYY-MM-DD), or None outside a git checkout.
fn commit(root: &Path) -> Option<(String, Option<String>)> {
    let git_dir = git_dir(root)?;
    // A linked worktree keeps HEAD (and its reflog) in its own directory, refs in the common one.
    let common = fs::read_to_string(git_dir.join("commondir")).map(|dir| git_dir.join(dir.trim())).unwrap_or_else(|_| git_dir.clone());
    let head = fs::read_to_string(git_dir.join("HEAD")).ok()?;
    watch(&git_dir.join("HEAD"));
    // The reflog moves on every commit, checkout and reset, also when the branch's ref is packed.
    watch(&git_dir.join("logs/HEAD"));
    let hash = match head.trim().strip_prefix("ref: ") {
        None => head.trim().to_owned(),
        Some(reference) => {
            let loose = common.join(reference);
            watch(&loose);
            match fs::read_to_string(&loose) {
                Ok(hash) => hash.trim().to_owned(),
                Err(_) => {
                    watch(&common.join("packed-refs"));
                    packed(&common, reference)?
                }
            }
        }
    };
    if hash.len() < 7 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None; // an unborn branch, or a HEAD this script does not understand
    }
    let date = Command::new("git")
        .arg("--git-dir")
        .arg(&git_dir)
        .args(["show", "-s", "--format=%cs", &hash])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|date| !date.is_empty());
    Some((hash[..7].to_owned(), date))
}

/// `.git` is a directory in a clone, and a file naming the directory in a linked worktree.
fn git_dir(root: &Path) -> Option<PathBuf> {
    let dot_git = root.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let pointer = fs::read_to_string(&dot_git).ok()?;
    let dir = PathBuf::from(pointer.trim().strip_prefix("gitdir: ")?);
    Some(if dir.is_absolute() { dir } else { root.join(dir) })
}

/// A branch's hash from packed-refs (lines "HASH refs/heads/NAME").
fn packed(common: &Path, reference: &str) -> Option<String> {
    let refs = fs::read_to_string(common.join("packed-refs")).ok()?;
    refs.lines().find_map(|line| line.strip_suffix(reference)?.strip_suffix(' ').map(str::to_owned))
}

/// Rerun when this file changes; a missing file is never named, since cargo would then rerun the
/// script (and relink the binary) on every build.
fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
