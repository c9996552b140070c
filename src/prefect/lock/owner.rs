//! Who holds an apply marker, and whether it is still alive on this machine, on any OS.
//!
//! A run that applies draws a random token, names its markers' owner with it, and holds an
//! exclusive OS lock (`flock` on Linux and macOS, `LockFileEx` on Windows) on the file
//! `<token>.lock` in a directory of this machine's Prefect home for the whole apply. The OS
//! drops the lock of a process that has ended, however it ended, so another run here reads
//! the marker's owner as alive (the file is locked), gone (the file is there and free), or
//! unknown here (no such file: another machine, or another Prefect home), where only the
//! lease can tell. No `/proc`, no host name, no process id lookup.

use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// What this machine knows of a marker's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Here {
    /// Its lock file here is locked: the owner is applying.
    Alive,
    /// Its lock file here is free: the owner ended without finishing.
    Gone,
    /// No lock file of it here (or no usable one): only its lease can tell.
    Unknown,
}

/// The lock file of the owner `token` in `dir`; none for a token this module could not have
/// made (a marker's value is read from the server and must not name other paths).
fn lock_path(dir: &Path, token: &str) -> Option<PathBuf> {
    let made_here = token.len() == 16 && token.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    made_here.then(|| dir.join(format!("{token}.lock")))
}

/// Whether the owner `token` is alive on this machine, as its lock file in `dir` says.
pub(super) fn probe(dir: &Path, token: &str) -> Here {
    let Some(path) = lock_path(dir, token) else { return Here::Unknown };
    // Opened for writing: Windows locks only handles with read or write access, and no
    // platform needs more. A file that cannot be opened or locked leaves it to the lease.
    let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else { return Here::Unknown };
    match file.try_lock() {
        Ok(()) => Here::Gone,
        Err(TryLockError::WouldBlock) => Here::Alive,
        Err(TryLockError::Error(_)) => Here::Unknown,
    }
}

/// Deletes the lock file of the owner `token`, once its marker is taken over: the file only
/// said that owner was gone. A failure leaves a few bytes behind and changes nothing else.
pub(super) fn forget(dir: &Path, token: &str) {
    if let Some(path) = lock_path(dir, token) {
        let _ = std::fs::remove_file(path);
    }
}

/// A random owner token: 16 hex digits from std's randomly keyed hasher (seeded from the
/// OS), fed the time, the process id and an address. Unique among runs, not a secret.
fn new_token() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    hasher.write_u32(std::process::id());
    hasher.write_usize(&hasher as *const _ as usize);
    format!("{:016x}", hasher.finish())
}

/// This run as the owner of its markers: its token, and the locked file that tells other
/// runs on this machine it is alive.
pub(super) struct Owner {
    /// The token the markers carry.
    pub(super) token: String,
    /// The lock file and its locked handle; none where the directory cannot hold one.
    lock: Option<(PathBuf, File)>,
}

impl Owner {
    /// Draws a token and locks its file in `dir`. Where no file can be created and locked
    /// (a read-only home, a file system without locks) none is left: other runs then read
    /// this owner as unknown and wait for its lease, never as gone.
    pub(super) fn take(dir: &Path) -> Self {
        let token = new_token();
        let lock = lock_path(dir, &token).and_then(|path| {
            std::fs::create_dir_all(dir).ok()?;
            let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).ok()?;
            if file.try_lock().is_err() {
                drop(file);
                let _ = std::fs::remove_file(&path);
                return None;
            }
            Some((path, file))
        });
        Self { token, lock }
    }

    /// Ends the ownership. When the markers were ended (`ended`), the file goes with the
    /// lock; otherwise it stays, unlocked, so the next run on this machine takes the
    /// unfinished markers over at once.
    pub(super) fn end(self, ended: bool) {
        if let Some((path, file)) = self.lock {
            drop(file);
            if ended {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_a_released_one_gone_and_no_file_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Owner::take(dir.path());
        assert_eq!(probe(dir.path(), &owner.token), Here::Alive, "a second handle, even in this process, cannot lock it");
        let token = owner.token.clone();
        owner.end(false);
        assert_eq!(probe(dir.path(), &token), Here::Gone, "the file stays, unlocked, as after a crash");
        forget(dir.path(), &token);
        assert_eq!(probe(dir.path(), &token), Here::Unknown);
    }

    #[test]
    fn an_ended_owner_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Owner::take(&dir.path().join("pushpool/applies"));
        let token = owner.token.clone();
        owner.end(true);
        assert_eq!(probe(&dir.path().join("pushpool/applies"), &token), Here::Unknown);
        assert_eq!(std::fs::read_dir(dir.path().join("pushpool/applies")).unwrap().count(), 0);
    }

    #[test]
    fn tokens_differ_and_a_token_from_elsewhere_names_no_path() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(lock_path(Path::new("d"), &a).is_some());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.lock"), "").unwrap();
        for token in ["../../etc/passwd", "x", "", "0123456789ABCDEF"] {
            assert_eq!(probe(dir.path(), token), Here::Unknown, "{token}");
            forget(dir.path(), token);
        }
        assert!(dir.path().join("x.lock").exists());
    }

    #[test]
    fn a_directory_that_cannot_hold_a_file_leaves_the_owner_to_its_lease() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("a-file");
        std::fs::write(&blocked, "").unwrap();
        let owner = Owner::take(&blocked.join("applies"));
        assert_eq!(probe(&blocked.join("applies"), &owner.token), Here::Unknown);
        owner.end(true);
    }
}
