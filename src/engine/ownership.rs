//! Ownership: what pushpool created, which is all a teardown ever deletes.
//!
//! One rule for every cloud: a resource pushpool creates carries `managed-by=pushpool` and the
//! name of the pool it was created for; one that lacks the mark is never deleted. How the mark
//! is written is the cloud's ([`Marking`]): AWS and Azure tags, GCP labels (whose keys take
//! only `[a-z0-9_-]`), a recorded description or a deterministic name where nothing takes tags.

use super::attrs::Attrs;
use super::observation::{Action, Observation};
use super::teardown::{Teardown, summarise};

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

/// What a teardown needs to know of an image store (a repository, a registry) beyond [`decide`].
pub struct ImageStore<'a> {
    /// Names of what it serves (a cluster, an identity): kept while another pool uses them.
    pub in_use_with: &'a [String],
    /// How those other pools use it, in words: "push flow images here".
    pub serving: &'a str,
    /// What it holds, in words ("3 image(s)"); None when empty.
    pub contents: Option<String>,
}

/// One rule for every cloud's image store, on top of [`decide`]'s `decided`: kept while another
/// pool uses what it serves; kept while it holds images, unless `--force`, which deletes them
/// with it (the `force` hint tells its tear-down).
pub fn decide_image_store(decided: Observation, teardown: &Teardown, store: ImageStore<'_>) -> Observation {
    if decided.action != Action::Delete {
        return decided;
    }
    let sharing = teardown.holders(store.in_use_with.iter().map(String::as_str));
    match store.contents {
        _ if !sharing.is_empty() => Observation::keep(format!("{} use(s) {} too, and {}", summarise(&sharing), store.in_use_with.join(", "), store.serving), decided.attrs),
        Some(contents) if !teardown.force => Observation::keep(format!("holds {contents}; --force deletes them with it"), decided.attrs),
        Some(contents) => Observation::delete(format!("created by pushpool; its {contents} go too (--force)"), decided.attrs.hint("force", true)),
        None => decided,
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

    #[test]
    fn an_image_store_stays_while_shared_or_holding_images_unless_forced() {
        let with = ["cluster-c".to_owned()];
        let store = |contents: Option<&str>| ImageStore { in_use_with: &with, serving: "push flow images here", contents: contents.map(str::to_owned) };
        let empty = Teardown::new(false, false);
        let deletable = || decide(true, None, Attrs::new(), "created by pushpool");
        assert_eq!(decide_image_store(deletable(), &empty, store(None)).action, Action::Delete);
        let held = decide_image_store(deletable(), &empty, store(Some("2 image(s)")));
        assert_eq!((held.action, held.reason.as_str()), (Action::Keep, "holds 2 image(s); --force deletes them with it"));
        let forced = decide_image_store(deletable(), &Teardown::new(true, false), store(Some("2 image(s)")));
        assert_eq!((forced.action, forced.attrs.flag("force", false)), (Action::Delete, true));
        let mut shared = Teardown::new(true, false);
        shared.add_references("pool 'b'", &serde_json::json!({"cluster": "cluster-c"}));
        assert_eq!(decide_image_store(deletable(), &shared, store(None)).reason, "pool 'b' use(s) cluster-c too, and push flow images here");
        assert_eq!(decide_image_store(decide(false, None, Attrs::new(), "x"), &empty, store(None)).reason, NOT_OURS);
    }
}
