//! Ownership: what pushpool created, which is all a teardown ever deletes.
//!
//! One rule for every cloud: a resource pushpool creates carries `managed-by=pushpool` and the
//! name of the pool it was created for; one that lacks the mark is never deleted. How the mark
//! is written is the cloud's ([`Marking`]): AWS and Azure tags, GCP labels (whose keys take
//! only `[a-z0-9_-]`), a recorded description or a deterministic name where nothing takes tags.

use super::attrs::Attrs;
use super::observation::Observation;

/// The mark of what pushpool created: key and value.
pub const MANAGED_BY: (&str, &str) = ("managed-by", "pushpool");

/// Why a teardown keeps a resource that lacks the [`MANAGED_BY`] mark.
pub const NOT_OURS: &str = "not created by pushpool (no managed-by=pushpool tag), so pushpool never deletes it";

/// How one cloud writes pushpool's marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marking {
    /// The key that names the pool, in the cloud's key alphabet (`prefect.work-pool` for tags).
    pub pool_key: &'static str,
}

impl Marking {
    /// The marks a resource created for `pool` carries: [`MANAGED_BY`] and the pool's name.
    pub fn marks<'a>(&self, pool: &'a str) -> [(&'static str, &'a str); 2] {
        [MANAGED_BY, (self.pool_key, pool)]
    }
}

/// True when `marks` (key, value) carry [`MANAGED_BY`]: the only resources a teardown deletes.
pub fn owned<'a>(marks: impl IntoIterator<Item = (&'a str, &'a str)>) -> bool {
    marks.into_iter().any(|mark| mark == MANAGED_BY)
}

/// The teardown decision every cloud kind starts from: keep what lacks the [`MANAGED_BY`]
/// mark, keep what something else still names (`in_use`, from
/// [`Teardown::in_use`](super::Teardown::in_use)), delete the rest, saying `why`.
pub fn decide(owned: bool, in_use: Option<String>, attrs: Attrs, why: impl Into<String>) -> Observation {
    match (owned, in_use) {
        (false, _) => Observation::keep(NOT_OURS, attrs),
        (true, Some(used)) => Observation::keep(used, attrs),
        (true, None) => Observation::delete(why, attrs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Action;

    #[test]
    fn only_marked_resources_nobody_uses_are_deleted() {
        let marking = Marking { pool_key: "prefect.work-pool" };
        assert_eq!(marking.marks("a"), [("managed-by", "pushpool"), ("prefect.work-pool", "a")]);
        assert!(owned(marking.marks("a")));
        assert!(!owned([("managed-by", "terraform")]));
        assert_eq!(decide(false, None, Attrs::new(), "x").action, Action::Keep);
        assert_eq!(decide(true, Some("in use by pool 'b'".into()), Attrs::new(), "x").reason, "in use by pool 'b'");
        assert_eq!(decide(true, None, Attrs::new(), "x").action, Action::Delete);
    }
}
