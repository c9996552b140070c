//! One apply at a time per AWS account, and never the apply of a plan another apply
//! overtook. Each apply creates a marker, a Prefect variable named after the key and the
//! generation it makes (`pushpool_apply_aws_123456789012_0000000007`): creating a variable
//! whose name exists is refused with 409, so the create is a compare-and-set every run of the
//! workspace sees. A run reads the markers beside the pool's own read and before any other
//! resource; its apply creates the one after the newest it saw, which fails when another run
//! applied, or is applying, since. The marker says `done` once the apply ends. Reading them
//! first matters: an apply that ended while the run was reading resources would otherwise
//! look finished before the reads and leave the plan built on its half-done state. (The
//! pool is read at the same time as the markers; a pool read just before another apply's
//! last write only makes this run write the same job-variable defaults again.)
//!
//! An unfinished marker is taken over when its run had stopped by the time it was read (so
//! nothing this run read was still being written), as any OS can tell without `/proc` or a
//! host name. A marker holds its run's random owner token, pid (for people), start and last
//! renewal. On the run's machine a file named after the token, locked by the OS while the
//! run lives, says at once whether it is alive ([`owner`]); elsewhere its lease does: the run
//! renews the marker every 20 seconds while it applies, and a marker not renewed for 90 is
//! stale ([`lease`]).
//!
//! One call before the apply and one after (and one per 20 seconds of a long apply), where
//! a lock and a separate generation counter take four (take, check, bump, release).
//! Superseded markers are deleted once a day old; a plan older than half a day is not
//! applied, so the marker that would refuse it still exists.

mod lease;
mod owner;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub use self::lease::LEASE_SECONDS;
use self::lease::Renewal;
use self::owner::{Here, Owner};
use super::client::{PrefectClient, Variable};
use super::context::PrefectContext;
use super::settings::PrefectSettings;
use crate::clock::unix_seconds;
use crate::error::{Error, Result};

/// Superseded markers older than this are deleted by the next apply.
const KEEP_SECONDS: i64 = 86_400;

/// The oldest plan an apply takes: well inside [`KEEP_SECONDS`], clocks of two machines apart.
const PLAN_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// The tag of every marker, to read them all in one call.
const TAG: &str = "pushpool_apply";

/// Where the runs of this machine's Prefect home keep their owners' lock files: beside the
/// profile file (in `$PREFECT_HOME`), where every run that uses that profile looks.
fn lock_dir(settings: &PrefectSettings) -> PathBuf {
    let home = settings.profile.path.parent().filter(|home| !home.as_os_str().is_empty()).unwrap_or(Path::new("."));
    home.join("pushpool").join("applies")
}

/// The prefix of `key`'s markers: Prefect takes lowercase letters, digits and underscores.
fn prefix(key: &str) -> String {
    let key: String = key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("pushpool_apply_{key}")
}

/// The marker of `key`'s generation `generation`.
fn marker(key: &str, generation: u64) -> String {
    format!("{}_{generation:010}", prefix(key))
}

/// The generation a marker of `key` is for, when `name` is one.
fn generation_of(key: &str, name: &str) -> Option<u64> {
    let digits = name.strip_prefix(&prefix(key))?.strip_prefix('_')?;
    digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok())?
}

/// What a plan saw of one key's applies.
#[derive(Debug, Clone, Default, PartialEq)]
struct Seen {
    /// The newest generation (0: never applied).
    generation: u64,
    /// The newest marker's value: who made it, since when, and whether it is done.
    newest: Value,
    /// Markers old enough to delete once the apply has made the next one.
    expired: Vec<String>,
}

impl Seen {
    /// True when the newest apply has not ended (or not said so).
    fn unfinished(&self) -> bool {
        self.generation > 0 && self.newest["done"] != json!(true)
    }
}

/// Every apply marker of the workspace, as a run read them before anything else, and when:
/// what its plan is made against.
#[derive(Debug, Clone)]
pub struct Markers {
    variables: Vec<Variable>,
    read_at: Instant,
    /// The unfinished markers whose run had stopped when they were read: an apply takes
    /// them over.
    stale: Vec<String>,
    /// Where this machine's owners keep their lock files.
    dir: PathBuf,
}

impl Markers {
    /// Reads them (one call, whatever the keys: the account is not known yet) and tells,
    /// right after, which unfinished ones' runs had stopped.
    pub async fn read(prefect: &PrefectContext) -> Result<Self> {
        let read_at = Instant::now();
        let variables = prefect.client.variables_tagged(TAG).await?;
        let (dir, now) = (lock_dir(&prefect.settings), unix_seconds());
        let stale = variables.iter().filter(|v| v.value["done"] != json!(true) && is_stale(&dir, &v.value, now)).map(|v| v.name.clone()).collect();
        Ok(Self { variables, read_at, stale, dir })
    }
}

fn seen(key: &str, variables: &[Variable]) -> Seen {
    let markers: Vec<(u64, &Variable)> = variables.iter().filter_map(|v| Some((generation_of(key, &v.name)?, v))).collect();
    let Some((generation, newest)) = markers.iter().max_by_key(|(generation, _)| *generation) else { return Seen::default() };
    let (generation, newest) = (*generation, newest.value.clone());
    // The newest one too: it is superseded once the apply has made the next.
    let now = unix_seconds();
    let expired = markers.into_iter().filter(|(_, v)| v.value["since"].as_i64().is_none_or(|since| now - since > KEEP_SECONDS)).map(|(_, v)| v.name.clone()).collect();
    Seen { generation, newest, expired }
}

/// The markers one apply holds, and their renewals while it runs.
pub struct ApplyLock {
    client: PrefectClient,
    owner: Owner,
    held: Vec<(String, Value)>,
    expired: Vec<String>,
    renewal: Renewal,
}

impl ApplyLock {
    /// Creates, for every key (in order, so two runs cannot deadlock), the marker after the
    /// newest the plan saw, taking over from a run that had stopped, and renews them until
    /// released. A live run applying, or an apply since the plan, is a clear error, and
    /// nothing is kept.
    pub async fn acquire(client: &PrefectClient, keys: &[String], markers: &Markers, note: &dyn Fn(&str)) -> Result<Self> {
        if markers.read_at.elapsed() > PLAN_MAX_AGE {
            return Err(Error::usage("plan", format!("was made more than {} hours ago; nothing was changed", PLAN_MAX_AGE.as_secs() / 3600))
                .fix("run again: pushpool plans against what exists now"));
        }
        let mut order: Vec<&String> = keys.iter().collect();
        order.sort();
        let seen: Vec<(&String, Seen)> = order.into_iter().map(|key| (key, seen(key, &markers.variables))).collect();
        // A live run refuses the apply before anything is written, here or on the server.
        if let Some((key, seen)) = seen.iter().find(|(key, seen)| seen.unfinished() && !markers.stale.contains(&marker(key, seen.generation))) {
            return Err(busy(key, &seen.newest, "is applying to it"));
        }
        let owner = Owner::take(&markers.dir);
        let (mut held, mut expired) = (Vec::new(), Vec::new());
        for (key, seen) in &seen {
            match take(client, &owner, key, seen, note).await {
                Ok(marker) => held.push(marker),
                Err(error) => {
                    abandon(client, &held, owner).await;
                    return Err(error);
                }
            }
            expired.extend(seen.expired.iter().cloned());
            // The lock file of a run taken over only said it had stopped.
            if let Some(token) = seen.newest["token"].as_str().filter(|_| seen.unfinished()) {
                owner::forget(&markers.dir, token);
            }
        }
        let renewal = renew(client, &held);
        Ok(Self { client: client.clone(), owner, held, expired, renewal })
    }

    /// Ends the apply: the renewals stop, then, when it wrote something, each marker is
    /// marked done, which makes the plans made before it stale; otherwise the markers go and
    /// the generation stays. Superseded markers a day old go at the same time. A failure
    /// leaves a marker the next run takes over: on this machine at once (the lock file
    /// stays, free once this process ends), elsewhere once its lease has lapsed.
    pub async fn release(self, wrote: bool) -> Result<()> {
        self.renewal.stop().await;
        let client = &self.client;
        let ends = self.held.iter().map(|(name, holder)| async move {
            if !wrote {
                return client.delete_variable(name).await;
            }
            let mut done = holder.clone();
            done["done"] = json!(true);
            client.set_variable(name, &done).await
        });
        let expired = self.expired.iter().map(|name| client.delete_variable(name));
        let (ends, _) = futures::join!(futures::future::try_join_all(ends), futures::future::join_all(expired));
        self.owner.end(ends.is_ok());
        ends.map(drop)
    }
}

/// Creates `key`'s next marker for `owner`, taking over from the stopped run `seen` ends
/// with if any.
async fn take(client: &PrefectClient, owner: &Owner, key: &str, seen: &Seen, note: &dyn Fn(&str)) -> Result<(String, Value)> {
    if seen.unfinished() {
        note(&format!("taking over from a pushpool run that stopped without finishing ({})", describe(&seen.newest)));
    }
    let name = marker(key, seen.generation + 1);
    let since = unix_seconds();
    let holder = json!({"token": owner.token, "pid": std::process::id(), "since": since, "renewed": since, "done": false});
    // A create retried after its answer was lost finds its own marker.
    if !client.create_variable(&name, &holder, &[TAG]).await? {
        let current = client.variable(&name).await?.unwrap_or(Value::Null);
        if current["token"] != holder["token"] {
            return Err(busy(key, &current, "has applied or is applying to it since this plan was made"));
        }
    }
    Ok((name, holder))
}

/// Deletes the markers `owner` took so far, after another key could not be taken.
async fn abandon(client: &PrefectClient, held: &[(String, Value)], owner: Owner) {
    let deletes = held.iter().map(|(name, _)| client.delete_variable(name));
    let deleted = futures::future::join_all(deletes).await.iter().all(Result::is_ok);
    owner.end(deleted);
}

/// Renews the `held` markers every [`lease::RENEW`] until stopped: each one's value with
/// `renewed` now, in the PATCH that marks it done at the end.
fn renew(client: &PrefectClient, held: &[(String, Value)]) -> Renewal {
    let (client, held) = (client.clone(), Arc::new(held.to_vec()));
    Renewal::start(lease::RENEW, move || {
        let (client, held) = (client.clone(), held.clone());
        async move {
            let renewed = unix_seconds();
            let renewals = held.iter().map(|(name, holder)| {
                let mut holder = holder.clone();
                holder["renewed"] = json!(renewed);
                let client = &client;
                async move { client.set_variable(name, &holder).await }
            });
            // One that fails is sent again a period later: the lease outlasts four.
            let _ = futures::future::join_all(renewals).await;
        }
    })
}

/// Who holds a marker, for people: its pid, when it started and when it last renewed.
fn describe(holder: &Value) -> String {
    let now = unix_seconds();
    let mut parts = vec![format!("pid {}", holder["pid"])];
    if let Some(since) = holder["since"].as_i64() {
        parts.push(format!("started {} s ago", (now - since).max(0)));
    }
    if let Some(renewed) = lease::renewed(holder) {
        parts.push(format!("last renewed {} s ago", (now - renewed).max(0)));
    }
    parts.join(", ")
}

/// The error for a key another run holds: who, since when, and what to do.
fn busy(key: &str, holder: &Value, doing: &str) -> Error {
    Error::usage(format!("apply to {key}"), format!("another pushpool run ({}) {doing}; nothing was changed", describe(holder))).fix(format!(
        "run again once it is done: pushpool plans against what exists then (a run that stopped without finishing is taken over \
         at once on its own machine, elsewhere {LEASE_SECONDS} s after its last renewal)"
    ))
}

/// True when the marker's run had stopped at `now`: its lock file in `dir` is free (it ran
/// here), or, when it has none here, its lease has lapsed. A run alive here is never stale,
/// whatever its lease says (a laptop that slept, a clock set back).
fn is_stale(dir: &Path, holder: &Value, now: i64) -> bool {
    match holder["token"].as_str().map_or(Here::Unknown, |token| owner::probe(dir, token)) {
        Here::Alive => false,
        Here::Gone => true,
        Here::Unknown => lease::lapsed(holder, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prefect::settings::ProfileFile;

    fn variable(name: &str, value: Value) -> Variable {
        Variable { name: name.to_owned(), value }
    }

    #[test]
    fn markers_take_prefect_characters_and_sort_by_name() {
        assert_eq!(marker("aws 123456789012/us-east-1", 7), "pushpool_apply_aws_123456789012_us_east_1_0000000007");
        assert_eq!(marker("Pool-A", 12), "pushpool_apply_pool_a_0000000012");
        assert!(marker("k", 9) < marker("k", 10));
    }

    #[test]
    fn the_newest_marker_of_the_key_itself_is_the_generation() {
        let now = unix_seconds();
        let seen = seen(
            "pool_a",
            &[
                variable("pushpool_apply_pool_a_0000000002", json!({"since": now, "done": true})),
                variable("pushpool_apply_pool_a_0000000001", json!({"since": now - 2 * KEEP_SECONDS, "done": true})),
                // Pool 'a-b' is another key whose names start the same: ignored.
                variable("pushpool_apply_pool_a_b_0000000009", json!({"since": now, "done": false})),
                variable("pushpool_apply_pool_a_0000000003", json!({"since": now, "done": false})),
            ],
        );
        assert_eq!(seen.generation, 3);
        assert_eq!(seen.newest["done"], json!(false));
        assert_eq!(seen.expired, ["pushpool_apply_pool_a_0000000001"], "a marker goes once a day old");
        assert_eq!(generation_of("pool_a", "pushpool_apply_pool_a_b_0000000009"), None);
        let old = super::seen("pool_a", &[variable("pushpool_apply_pool_a_0000000004", json!({"since": now - 2 * KEEP_SECONDS, "done": true}))]);
        assert_eq!((old.generation, old.expired.len()), (4, 1), "the newest goes too once the next supersedes it");
    }

    #[test]
    fn a_key_never_applied_is_generation_zero() {
        assert_eq!(seen("pool_a", &[]), Seen::default());
    }

    #[test]
    fn a_marker_is_stale_when_its_run_ended_here_or_its_lease_lapsed_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let (dir, now) = (dir.path(), unix_seconds());
        let holder = |token: &str, renewed: i64| json!({"token": token, "pid": 4242, "since": now - 3600, "renewed": renewed, "done": false});
        let this_run = Owner::take(dir);
        let token = this_run.token.clone();
        assert!(!is_stale(dir, &holder(&token, now - 3600), now), "a run alive here is not stale, whatever its lease says");
        this_run.end(false);
        assert!(is_stale(dir, &holder(&token, now), now), "its lock file is free: the run ended, renewed or not");
        let elsewhere = "00c0ffee00c0ffee";
        assert!(!is_stale(dir, &holder(elsewhere, now - 5), now), "no lock file here, renewed 5 s ago");
        assert!(is_stale(dir, &holder(elsewhere, now - LEASE_SECONDS - 1), now), "no lock file here, not renewed within the lease");
        let before_tokens = json!({"host": "ci-runner-7", "pid": 4242, "since": now - 5, "done": false});
        assert!(!is_stale(dir, &before_tokens, now) && is_stale(dir, &before_tokens, now + LEASE_SECONDS), "a marker without a token has its start as lease");
    }

    #[test]
    fn a_busy_key_names_the_run_and_the_wait() {
        let now = unix_seconds();
        let error = busy("aws_1", &json!({"token": "00c0ffee00c0ffee", "pid": 4242, "since": now - 30, "renewed": now - 10}), "is applying to it");
        assert_eq!(error.cause, "another pushpool run (pid 4242, started 30 s ago, last renewed 10 s ago) is applying to it; nothing was changed");
        assert!(error.fix.unwrap().contains(&format!("elsewhere {LEASE_SECONDS} s after its last renewal")));
    }

    #[test]
    fn lock_files_live_in_the_prefect_home() {
        let settings = |path: &str| PrefectSettings {
            api_url: "http://127.0.0.1:4200/api".into(),
            api_key: None,
            profile: ProfileFile { path: PathBuf::from(path), active: "default".into() },
            cloud: None,
        };
        assert_eq!(lock_dir(&settings("/home/me/.prefect/profiles.toml")), Path::new("/home/me/.prefect/pushpool/applies"));
        assert_eq!(lock_dir(&settings("profiles.toml")), Path::new("./pushpool/applies"));
    }
}
