//! Small JSON records pushpool keeps in Prefect variables, about what it wrote where it
//! cannot read it back: the type a pool was provisioned as, the key a Modal Secret holds.
//!
//! A record is written only when missing or different, so that a re-run writes nothing.

use serde_json::Value;

use super::client::PrefectClient;
use crate::error::Result;

/// One kind of record: its variables share a tag, by which they can be listed.
pub struct Records {
    tag: &'static str,
}

impl Records {
    /// The records tagged `tag` (lowercase letters, digits and underscores).
    pub const fn new(tag: &'static str) -> Self {
        Self { tag }
    }

    /// The tag every record of this kind carries, by which they are listed.
    pub const fn tag(&self) -> &'static str {
        self.tag
    }

    /// The variable of the record about `key`: Prefect takes lowercase letters, digits and
    /// underscores, so the name is the key in that alphabet plus a hash of the exact key
    /// (`My-Pool` and `my_pool` differ).
    pub fn variable_name(&self, key: &str) -> String {
        let readable: String = key.chars().take(200).map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
        // FNV-1a: stable across builds and platforms, unlike the standard library's hasher.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        format!("{}_{readable}_{:08x}", self.tag, hash as u32)
    }

    /// The record about `key`, if any.
    pub async fn read(&self, client: &PrefectClient, key: &str) -> Result<Option<Value>> {
        client.variable(&self.variable_name(key)).await
    }

    /// Makes the record about `key` say `wanted`, unless it already does.
    pub async fn ensure(&self, client: &PrefectClient, key: &str, wanted: &Value) -> Result<()> {
        let existing = client.variable(&self.variable_name(key)).await?;
        self.put(client, key, wanted, existing.as_ref()).await
    }

    /// Makes the record about `key`, read as `existing`, say `wanted`: nothing when it already
    /// does. A record made since it was read is set all the same.
    pub async fn put(&self, client: &PrefectClient, key: &str, wanted: &Value, existing: Option<&Value>) -> Result<()> {
        let name = self.variable_name(key);
        match existing {
            Some(value) if value == wanted => Ok(()),
            Some(_) => client.set_variable(&name, wanted).await,
            None => {
                if !client.create_variable(&name, wanted, &[self.tag]).await? {
                    // Made meanwhile by another run: make it say this.
                    client.set_variable(&name, wanted).await?;
                }
                Ok(())
            }
        }
    }

    /// Deletes the record about `key` (a missing one is fine).
    pub async fn forget(&self, client: &PrefectClient, key: &str) -> Result<()> {
        client.delete_variable(&self.variable_name(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefects_alphabet_and_tell_similar_keys_apart() {
        let records = Records::new("pushpool_pool");
        let name = records.variable_name("My-Pool");
        assert!(name.starts_with("pushpool_pool_my_pool_"), "{name}");
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        assert_ne!(name, records.variable_name("my_pool"));
        assert_eq!(name, records.variable_name("My-Pool"), "stable");
        assert!(records.variable_name(&"x".repeat(500)).len() < 255);
    }
}
