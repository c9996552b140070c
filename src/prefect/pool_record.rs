//! The type a pool was provisioned as, kept in a Prefect variable that outlives the pool and
//! its block.
//!
//! A teardown finds what to delete from the pool's type, and reads the type from the pool. A
//! provisioning killed before the pool was created, or a teardown killed after the pool and its
//! block went, leaves cloud resources and no pool: the record still says the type, so that
//! `pushpool work-pool deprovision NAME` cleans up without `--type`. It is written before a
//! provisioning apply writes anything (only when missing or different: a re-run writes
//! nothing) and deleted once a teardown has finished.

use serde_json::json;

use super::client::PrefectClient;
use crate::error::Result;

/// The tag of every record, so that they can be listed.
const TAG: &str = "pushpool_pool";

/// The record's variable: Prefect takes lowercase letters, digits and underscores, so the name
/// is the pool's in that alphabet plus a hash of the exact name (`My-Pool` and `my_pool` differ).
pub fn variable_name(pool: &str) -> String {
    let readable: String = pool.chars().take(200).map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
    let hash = pool.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{TAG}_{readable}_{:08x}", hash as u32)
}

/// The type recorded for `pool`, if any.
pub async fn read(client: &PrefectClient, pool: &str) -> Result<Option<String>> {
    let value = client.variable(&variable_name(pool)).await?;
    Ok(value.and_then(|v| v["type"].as_str().map(str::to_owned)))
}

/// Records that `pool` is of `pool_type`, unless it already says so.
pub async fn ensure(client: &PrefectClient, pool: &str, pool_type: &str) -> Result<()> {
    let name = variable_name(pool);
    let wanted = json!({"pool": pool, "type": pool_type});
    match client.variable(&name).await? {
        Some(value) if value == wanted => Ok(()),
        Some(_) => client.set_variable(&name, &wanted).await,
        None => {
            if !client.create_variable(&name, &wanted, &[TAG]).await? {
                // Made meanwhile by another run: make it say this type.
                client.set_variable(&name, &wanted).await?;
            }
            Ok(())
        }
    }
}

/// Deletes `pool`'s record (a missing one is fine).
pub async fn forget(client: &PrefectClient, pool: &str) -> Result<()> {
    client.delete_variable(&variable_name(pool)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefects_alphabet_and_tell_similar_pools_apart() {
        let name = variable_name("My-Pool");
        assert!(name.starts_with("pushpool_pool_my_pool_"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        assert_ne!(name, variable_name("my_pool"));
        assert_eq!(name, variable_name("My-Pool"), "stable");
        assert!(variable_name(&"x".repeat(500)).len() < 255);
    }
}
