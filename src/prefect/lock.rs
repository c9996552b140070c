//! One apply at a time per AWS account: a lock kept as a Prefect variable (creating a
//! variable whose name exists is refused with 409, which makes it a mutex every run of the
//! workspace sees), and a generation counter beside it that each apply bumps, so that a run
//! whose plan was overtaken by another run's apply refuses instead of creating twice.

use serde_json::{Value, json};

use super::client::PrefectClient;
use crate::clock::unix_seconds;
use crate::error::{Error, Result};

/// A lock older than this is taken over: its run cannot still be applying.
const STALE_AFTER_SECONDS: i64 = 3600;

/// This machine's name, to tell whether a lock's process can be checked here.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

/// A variable name for `key`: Prefect takes lowercase letters, digits and underscores.
fn variable(prefix: &str, key: &str) -> String {
    let key: String = key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("pushpool_{prefix}_{key}")
}

/// The generation of each key: how many applies have finished on it.
pub async fn generations(client: &PrefectClient, keys: &[String]) -> Result<Vec<i64>> {
    let names: Vec<String> = keys.iter().map(|key| variable("generation", key)).collect();
    let values = futures::future::try_join_all(names.iter().map(|name| client.variable(name))).await?;
    Ok(values.into_iter().map(|v| v.and_then(|v| v.as_i64()).unwrap_or(0)).collect())
}

/// The held locks of one apply.
pub struct ApplyLock {
    client: PrefectClient,
    keys: Vec<String>,
}

impl ApplyLock {
    /// Takes the lock of every key (in order, so two runs cannot deadlock), taking over a lock
    /// whose run is gone. Another live run holding one is a clear error, and nothing is kept.
    pub async fn acquire(client: &PrefectClient, keys: &[String], note: &dyn Fn(&str)) -> Result<Self> {
        let mut held = Self { client: client.clone(), keys: Vec::new() };
        let mut sorted = keys.to_vec();
        sorted.sort();
        for key in sorted {
            let name = variable("lock", &key);
            let holder = json!({"host": host(), "pid": std::process::id(), "since": unix_seconds()});
            if client.create_variable(&name, &holder).await? {
                held.keys.push(key);
                continue;
            }
            let current = client.variable(&name).await?.unwrap_or(Value::Null);
            if is_stale(&current) {
                note(&format!("taking over the lock of a pushpool run that is gone ({current})"));
                client.delete_variable(&name).await?;
                if client.create_variable(&name, &holder).await? {
                    held.keys.push(key);
                    continue;
                }
            }
            held.release().await;
            let since = current["since"].as_i64().map(|s| format!("{} s ago", (unix_seconds() - s).max(0))).unwrap_or_else(|| "recently".into());
            return Err(Error::usage(
                format!("apply lock for {key}"),
                format!("another pushpool run (pid {} on {}, started {since}) is applying to it; nothing was changed", current["pid"], current["host"]),
            )
            .fix(format!(
                "run again once it is done; if that run died on another machine, delete the Prefect variable {name} (`prefect variable unset {name}`)"
            )));
        }
        Ok(held)
    }

    /// Bumps the generation of every key held: another run's plan made before now is stale.
    pub async fn bump(&self, seen: &[i64]) -> Result<()> {
        let bumps = self.keys.iter().zip(seen).map(|(key, generation)| async move {
            let (name, next) = (variable("generation", key), json!(generation + 1));
            // Generation 0 is a variable that does not exist yet: create it in one call.
            if *generation == 0 && self.client.create_variable(&name, &next).await? {
                return Ok(());
            }
            self.client.set_variable(&name, &next).await
        });
        futures::future::try_join_all(bumps).await.map(drop)
    }

    /// The keys held, in the order of [`generations`].
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Releases every lock held; a failure only leaves a lock the next run takes over.
    pub async fn release(self) {
        for key in &self.keys {
            let _ = self.client.delete_variable(&variable("lock", key)).await;
        }
    }
}

/// True when the lock's run cannot be applying any more: its process is gone from this
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

    #[test]
    fn variable_names_take_prefect_characters_only() {
        assert_eq!(variable("lock", "aws 123456789012/us-east-1"), "pushpool_lock_aws_123456789012_us_east_1");
        assert_eq!(variable("lock", "Pool-A"), "pushpool_lock_pool_a");
    }

    #[test]
    fn a_lock_is_stale_when_its_process_is_gone_or_it_is_old() {
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
