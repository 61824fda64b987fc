//! Recently seen field names, shared instead of allocated per record.
//!
//! Every record of a table repeats the same keys (`id`, `email`, `updated_at`, ...). The JSON
//! reader asks [`RecentNames::get`] for each key and gets a clone of the name it made the last
//! time (a reference count increment) instead of a fresh allocation, which later rows, type
//! inference and encoding then compare by pointer first.
//!
//! The cache is direct-mapped: [`SLOTS`] slots, each holding the last name that hashed to it.
//! A collision only costs an allocation (the newer name takes the slot); a hit is always
//! confirmed by comparing the text, so two different names are never confused. Its memory is
//! bounded by [`SLOTS`] names whatever the data.

use super::json_reader::KeySpelling;
use crate::value::FieldName;

/// Slots of the cache: far more than the columns of a typical table (with its Debezium
/// envelope and source block), so names of a few tables of a batch live side by side.
const SLOTS: usize = 512;

/// Names longer than this are not cached (rare, and hashing them costs more than it saves).
const MAX_CACHED_LEN: usize = 64;

/// Empty (no allocation) until the first name is asked for: the reader's scratch is moved in
/// and out of a thread-local with `Cell::take`, which makes a default one each time.
#[derive(Default)]
pub(super) struct RecentNames {
    slots: Vec<Option<FieldName>>,
}

impl RecentNames {
    pub(super) const fn new() -> Self {
        RecentNames { slots: Vec::new() }
    }

    /// The shared name spelled `text`.
    #[inline]
    pub(super) fn get(&mut self, text: &str) -> FieldName {
        if text.len() > MAX_CACHED_LEN {
            return FieldName::from(text);
        }
        if self.slots.is_empty() {
            self.slots = vec![None; SLOTS];
        }
        let slot = &mut self.slots[slot_of(text.as_bytes())];
        match slot {
            Some(name) if crate::value::same_text(name.as_bytes(), text.as_bytes()) => name.clone(),
            _ => {
                let name = FieldName::from(text);
                *slot = Some(name.clone());
                name
            }
        }
    }
}

/// The key order of the last object read at each of the first [`PREDICTED_DEPTHS`] depths.
/// Records of a table repeat their keys in the same order, so the reader first checks whether
/// the next key is the one the last object had at that position: a byte comparison instead of
/// scanning the key and looking its name up, and no duplicate-key search while the keys match
/// (the recorded order has no duplicates).
#[derive(Default)]
pub(super) struct LastKeys {
    by_depth: Vec<PredictedKeys>,
}

/// An object's predicted keys in order, each with its spelling (see [`KeySpelling`]).
pub(super) type PredictedKeys = Vec<(FieldName, Option<KeySpelling>)>;

/// Objects nested deeper than this are not predicted.
const PREDICTED_DEPTHS: usize = 4;

/// Objects with more keys than this are not recorded.
const MAX_PREDICTED_KEYS: usize = 1024;

impl LastKeys {
    pub(super) const fn new() -> Self {
        LastKeys {
            by_depth: Vec::new(),
        }
    }

    /// The keys recorded for `depth` (empty if none), lent until [`LastKeys::put`] or
    /// [`LastKeys::give_back`].
    pub(super) fn take(&mut self, depth: u32) -> PredictedKeys {
        match self.by_depth.get_mut(depth as usize) {
            Some(keys) => std::mem::take(keys),
            None => Vec::new(),
        }
    }

    /// Returns keys [`LastKeys::take`] lent, unchanged (they were checked when recorded).
    pub(super) fn give_back(&mut self, depth: u32, keys: PredictedKeys) {
        if let Some(slot) = self.by_depth.get_mut(depth as usize) {
            *slot = keys;
        }
    }

    /// Records the key order of an object at `depth`: its distinct keys in order. Names a
    /// JSON text could only spell with escapes are not recorded (the prediction compares raw
    /// bytes).
    pub(super) fn put(&mut self, depth: u32, keys: Vec<FieldName>) {
        let depth = depth as usize;
        if depth >= PREDICTED_DEPTHS
            || keys.len() > MAX_PREDICTED_KEYS
            || !keys.iter().all(|k| is_plain(k))
        {
            return;
        }
        if self.by_depth.len() <= depth {
            self.by_depth.resize_with(depth + 1, Vec::new);
        }
        self.by_depth[depth] = keys
            .into_iter()
            .map(|name| {
                let spelling = KeySpelling::of(&name);
                (name, spelling)
            })
            .collect();
    }
}

/// Whether `name` is spelled in JSON exactly as its bytes (no quote, backslash or control
/// character to escape).
fn is_plain(name: &str) -> bool {
    !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

/// The slot of a name: a multiplicative hash of its length and of its first and last (up to)
/// eight bytes, which tells apart the names of one table in practice.
#[inline]
fn slot_of(b: &[u8]) -> usize {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let head = load_le(&b[..b.len().min(8)]);
    let tail = load_le(&b[b.len().saturating_sub(8)..]);
    let h = (head ^ tail.rotate_left(29) ^ (b.len() as u64)).wrapping_mul(K);
    (h >> (64 - SLOTS.trailing_zeros())) as usize
}

/// Up to eight bytes as a little-endian integer.
#[inline]
fn load_le(b: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_repeated_name_is_the_same_allocation() {
        let mut names = RecentNames::default();
        let a = names.get("customer_id");
        let b = names.get("customer_id");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "customer_id");
    }

    #[test]
    fn different_names_are_never_confused_even_in_one_slot() {
        let mut names = RecentNames::default();
        // Far more names than slots: collisions are certain, and each answer must still be
        // the name asked for.
        let texts: Vec<String> = (0..5 * SLOTS).map(|i| format!("column_{i}")).collect();
        for round in 0..2 {
            for text in &texts {
                assert_eq!(&*names.get(text), text.as_str(), "round {round}");
            }
        }
        // Empty, one-byte, long and non-ASCII names.
        let long = "x".repeat(MAX_CACHED_LEN + 1);
        for text in ["", "a", "é", "a b.c`d", long.as_str()] {
            assert_eq!(&*names.get(text), text);
            assert_eq!(&*names.get(text), text);
        }
    }

    #[test]
    fn key_orders_are_kept_per_depth_and_only_for_plain_names() {
        let mut last = LastKeys::default();
        let keys = |names: &[&str]| names.iter().map(|n| FieldName::from(*n)).collect();
        let predicted = |names: &[&str]| -> PredictedKeys {
            names
                .iter()
                .map(|n| (FieldName::from(*n), KeySpelling::of(n)))
                .collect()
        };
        last.put(1, keys(&["id", "name"]));
        last.put(0, keys(&["op"]));
        assert_eq!(last.take(1), predicted(&["id", "name"]));
        assert!(last.take(1).is_empty(), "lent, not copied");
        last.give_back(1, predicted(&["id", "name"]));
        assert_eq!(last.take(1), predicted(&["id", "name"]));
        assert_eq!(last.take(0), predicted(&["op"]));
        // Names too long to spell are predicted all the same.
        let long = "a_column_name_of_22_by";
        assert_eq!(long.len(), KeySpelling::MAX_NAME + 1);
        last.put(1, keys(&[long]));
        assert_eq!(last.take(1), vec![(FieldName::from(long), None)]);
        assert!(last.take(3).is_empty());
        for escaped in ["a\"b", "a\\b", "a\nb", "\u{1}"] {
            last.put(2, keys(&["id", escaped]));
            assert!(last.take(2).is_empty(), "{escaped:?}");
        }
        last.put(PREDICTED_DEPTHS as u32, keys(&["id"]));
        assert!(last.take(PREDICTED_DEPTHS as u32).is_empty());
    }

    #[test]
    fn names_differing_only_in_the_middle_are_told_apart() {
        let mut names = RecentNames::default();
        let a = names.get("prefix_aaaa_suffix");
        let b = names.get("prefix_bbbb_suffix");
        assert_eq!(&*a, "prefix_aaaa_suffix");
        assert_eq!(&*b, "prefix_bbbb_suffix");
        assert_eq!(&*names.get("prefix_aaaa_suffix"), "prefix_aaaa_suffix");
    }
}
