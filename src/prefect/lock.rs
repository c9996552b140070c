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
//! One call before the apply and one after, where a lock and a separate generation counter
//! take four (take, check, bump, release). Superseded markers are deleted once a day old; a
//! plan older than half a day is not applied, so the marker that would refuse it still exists.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::{PrefectClient, Variable};
use crate::clock::unix_seconds;
use crate::error::{Error, Result};

/// An unfinished marker older than this is taken over: its run cannot still be applying.
const STALE_AFTER_SECONDS: i64 = 3600;

/// Superseded markers older than this are deleted by the next apply.
const KEEP_SECONDS: i64 = 86_400;

/// The oldest plan an apply takes: well inside [`KEEP_SECONDS`], clocks of two machines apart.
const PLAN_MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// The tag of every marker, to read them all in one call.
const TAG: &str = "pushpool_apply";

/// This machine's name, to tell whether a marker's process can be checked here.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
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

/// Every apply marker of the workspace, as a run read them before anything else, and when:
/// what its plan is made against.
#[derive(Debug, Clone)]
pub struct Markers {
    variables: Vec<Variable>,
    read_at: Instant,
}

impl Markers {
    /// Reads them: one call, whatever the keys (the account is not known yet).
    pub async fn read(client: &PrefectClient) -> Result<Self> {
        let read_at = Instant::now();
        Ok(Self { variables: client.variables_tagged(TAG).await?, read_at })
    }
}

fn seen(key: &str, variables: &[Variable]) -> Seen {
    let markers: Vec<(u64, &Variable)> = variables.iter().filter_map(|v| Some((generation_of(key, &v.name)?, v))).collect();
    let Some((generation, newest)) = markers.iter().max_by_key(|(generation, _)| *generation) else { return Seen::default() };
    let (generation, newest) = (*generation, newest.value.clone());
    // The newest one too: it is superseded once the apply has made the next.
    let now = unix_seconds();
    let expired = markers
        .into_iter()
        .filter(|(_, v)| v.value["since"].as_i64().is_none_or(|since| now - since > KEEP_SECONDS))
        .map(|(_, v)| v.name.clone())
        .collect();
    Seen { generation, newest, expired }
}

/// The markers one apply holds.
pub struct ApplyLock {
    client: PrefectClient,
    held: Vec<(String, Value)>,
    expired: Vec<String>,
}

impl ApplyLock {
    /// Creates, for every key (in order, so two runs cannot deadlock), the marker after the
    /// newest the plan saw, taking over from a run that is gone. A live run applying, or an
    /// apply since the plan, is a clear error, and nothing is kept.
    pub async fn acquire(client: &PrefectClient, keys: &[String], markers: &Markers, note: &dyn Fn(&str)) -> Result<Self> {
        if markers.read_at.elapsed() > PLAN_MAX_AGE {
            return Err(Error::usage("plan", format!("was made more than {} hours ago; nothing was changed", PLAN_MAX_AGE.as_secs() / 3600))
                .fix("run again: pushpool plans against what exists now"));
        }
        let mut lock = Self { client: client.clone(), held: Vec::new(), expired: Vec::new() };
        let mut order: Vec<&String> = keys.iter().collect();
        order.sort();
        for key in order {
            if let Err(error) = lock.take(key, &seen(key, &markers.variables), note).await {
                lock.abandon().await;
                return Err(error);
            }
        }
        Ok(lock)
    }

    async fn take(&mut self, key: &str, seen: &Seen, note: &dyn Fn(&str)) -> Result<()> {
        let newest = &seen.newest;
        if seen.generation > 0 && newest["done"] != json!(true) {
            if !is_stale(newest) {
                return Err(busy(key, newest, "is applying to it"));
            }
            note(&format!("taking over from a pushpool run that is gone ({newest})"));
        }
        let name = marker(key, seen.generation + 1);
        let holder = json!({"host": host(), "pid": std::process::id(), "since": unix_seconds(), "done": false});
        // A create retried after its answer was lost finds its own marker.
        if !self.client.create_variable(&name, &holder, &[TAG]).await? {
            let current = self.client.variable(&name).await?.unwrap_or(Value::Null);
            if current != holder {
                return Err(busy(key, &current, "has applied or is applying to it since this plan was made"));
            }
        }
        self.held.push((name, holder));
        self.expired.extend(seen.expired.iter().cloned());
        Ok(())
    }

    /// Ends the apply. When it wrote something each marker is marked done, which makes the
    /// plans made before it stale; otherwise the markers go and the generation stays.
    /// Superseded markers a day old go at the same time. A failure leaves a marker that
    /// stops other runs until this process is gone (on this machine) or an hour has passed.
    pub async fn release(self, wrote: bool) -> Result<()> {
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
        ends.map(drop)
    }

    /// Deletes the markers taken so far, after another key could not be taken.
    async fn abandon(self) {
        let deletes = self.held.iter().map(|(name, _)| self.client.delete_variable(name));
        let _ = futures::future::join_all(deletes).await;
    }
}

/// The error for a key another run holds: who, since when, and what to do.
fn busy(key: &str, holder: &Value, doing: &str) -> Error {
    let since = holder["since"].as_i64().map(|s| format!("started {} s ago", (unix_seconds() - s).max(0))).unwrap_or_else(|| "recently".into());
    Error::usage(
        format!("apply to {key}"),
        format!("another pushpool run (pid {} on {}, {since}) {doing}; nothing was changed", holder["pid"], holder["host"].as_str().unwrap_or("?")),
    )
    .fix("run again once it is done: pushpool plans against what exists then")
}

/// True when the marker's run cannot be applying any more: its process is gone from this
/// host, or it is older than an hour.
fn is_stale(holder: &Value) -> bool {
    let old = holder["since"].as_i64().is_none_or(|since| unix_seconds() - since > STALE_AFTER_SECONDS);
    let gone_here = holder["host"].as_str() == Some(host().as_str())
        && holder["pid"].as_u64().is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
    old || gone_here
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_marker_is_stale_when_its_process_is_gone_or_it_is_old() {
        let alive = json!({"host": host(), "pid": std::process::id(), "since": unix_seconds()});
        assert!(!is_stale(&alive));
        let gone = json!({"host": host(), "pid": u32::MAX, "since": unix_seconds()});
        assert!(is_stale(&gone));
        let elsewhere = json!({"host": "another-machine", "pid": u32::MAX, "since": unix_seconds()});
        assert!(!is_stale(&elsewhere), "a process on another machine cannot be checked");
        let old = json!({"host": "another-machine", "pid": 1, "since": unix_seconds() - 7200});
        assert!(is_stale(&old));
    }
}
