//! The member keys of the last object of a kind (a Debezium envelope, its `source` block), in
//! order, each with what the reader does with it: the next object of that kind usually has
//! the same keys in the same order, so each key is recognised by a byte comparison where it
//! stands instead of being scanned and then matched against the names the reader knows.
//!
//! A key that differs from the plan is read and classified as usual; the object's keys then
//! become the plan for the next object. The plan only changes speed: every key is classified
//! as its text says (a planned key is one whose bytes, closing quote included, are exactly
//! the planned text).

use super::json_reader::{JsonStr, KeySpelling, Reader};

/// Objects with more keys than this are not planned (their keys are read one by one).
const MAX_PLANNED_KEYS: usize = 64;

/// The planned keys of one kind of object. `T` is what a key means to the reader.
pub(crate) struct KeyPlan<T> {
    keys: Vec<PlannedKey<T>>,
}

/// A planned key: its text, its [`KeySpelling`] and what it means.
struct PlannedKey<T> {
    text: Box<str>,
    spelling: Option<KeySpelling>,
    meaning: T,
}

impl<T: Copy> Clone for PlannedKey<T> {
    fn clone(&self) -> Self {
        PlannedKey {
            text: self.text.clone(),
            spelling: self.spelling,
            meaning: self.meaning,
        }
    }
}

impl<T> KeyPlan<T> {
    pub(crate) const fn new() -> Self {
        KeyPlan { keys: Vec::new() }
    }
}

impl<T> Default for KeyPlan<T> {
    fn default() -> Self {
        KeyPlan::new()
    }
}

/// Reads one object's keys against a plan; [`PlannedKeys::finish`] records its keys as the
/// plan for the next object of the kind.
pub(crate) struct PlannedKeys<'p, T> {
    plan: &'p mut KeyPlan<T>,
    /// How many keys so far were the planned ones, in order.
    matched: usize,
    /// The object's keys once one left the plan (`None` while all follow it).
    read: Option<Vec<PlannedKey<T>>>,
    /// Whether every key read off the plan can be recognised by its bytes (none had escapes).
    recordable: bool,
}

impl<'p, T: Copy> PlannedKeys<'p, T> {
    pub(crate) fn new(plan: &'p mut KeyPlan<T>) -> Self {
        PlannedKeys {
            plan,
            matched: 0,
            read: None,
            recordable: true,
        }
    }

    /// Reads the next member's key and its `:` (the cursor must be on the key, whitespace
    /// allowed) and answers what it means: the planned meaning when the key is spelled as
    /// planned, else `classify` of its text. `None` where [`Reader::key`] gives `None`.
    #[inline]
    pub(crate) fn next(&mut self, r: &mut Reader<'_>, classify: impl Fn(&str) -> T) -> Option<T> {
        if self.read.is_none() {
            if let Some(key) = self.plan.keys.get(self.matched)
                && r.predicted_key(&key.text, &key.spelling)?
            {
                self.matched += 1;
                return Some(key.meaning);
            }
            let mut read = Vec::with_capacity(self.plan.keys.len().max(self.matched + 1));
            read.extend_from_slice(&self.plan.keys[..self.matched]);
            self.read = Some(read);
        }
        let key = r.key()?;
        let meaning = classify(key.as_str());
        if let (Some(read), JsonStr::Borrowed(text)) = (&mut self.read, &key) {
            // A borrowed key had no escapes: its bytes are its text.
            read.push(PlannedKey {
                text: Box::from(*text),
                spelling: KeySpelling::of(text),
                meaning,
            });
        } else {
            self.recordable = false;
        }
        Some(meaning)
    }

    /// After the object's last member: its keys become the plan (unless one had escapes or
    /// there are too many).
    pub(crate) fn finish(self) {
        match self.read {
            None => self.plan.keys.truncate(self.matched),
            Some(read) if self.recordable && read.len() <= MAX_PLANNED_KEYS => {
                self.plan.keys = read;
            }
            Some(_) => self.plan.keys.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The meanings of an object's keys read with `plan` (keys are classified by length), and
    /// whether the object was valid.
    fn meanings(plan: &mut KeyPlan<usize>, text: &str) -> Option<Vec<usize>> {
        Reader::with(text, |r| {
            let mut keys = PlannedKeys::new(plan);
            let mut out = Vec::new();
            if r.open_object(0)? {
                loop {
                    out.push(keys.next(r, |k| k.len())?);
                    r.skip_value(1)?;
                    if !r.next_or_close(b'}')? {
                        break;
                    }
                }
            }
            r.end()?;
            keys.finish();
            Some(out)
        })
    }

    fn planned(plan: &KeyPlan<usize>) -> Vec<&str> {
        plan.keys.iter().map(|k| &*k.text).collect()
    }

    #[test]
    fn keys_are_classified_by_their_text_whatever_the_plan() {
        let mut plan = KeyPlan::default();
        let doc = r#"{"a": 1, "bb": 2, "ccc": 3}"#;
        assert_eq!(meanings(&mut plan, doc), Some(vec![1, 2, 3]));
        assert_eq!(planned(&plan), ["a", "bb", "ccc"]);
        // Followed: the same answers, the plan unchanged.
        assert_eq!(meanings(&mut plan, doc), Some(vec![1, 2, 3]));
        assert_eq!(planned(&plan), ["a", "bb", "ccc"]);
        // A key that starts like a planned one is not taken for it.
        assert_eq!(
            meanings(&mut plan, r#"{"a": 1, "bbb": 2, "c": 3}"#),
            Some(vec![1, 3, 1])
        );
        assert_eq!(planned(&plan), ["a", "bbb", "c"]);
        // Fewer keys: the plan is cut to them.
        assert_eq!(meanings(&mut plan, r#"{ "a" : 1 }"#), Some(vec![1]));
        assert_eq!(planned(&plan), ["a"]);
        // More keys, reordered, with whitespace.
        assert_eq!(
            meanings(&mut plan, "{\"dddd\":1,\n \"a\" :2, \"ee\":3}"),
            Some(vec![4, 1, 2])
        );
        assert_eq!(planned(&plan), ["dddd", "a", "ee"]);
    }

    #[test]
    fn escaped_keys_are_read_but_not_planned() {
        let mut plan = KeyPlan::default();
        assert_eq!(
            meanings(&mut plan, r#"{"a": 1, "\u0062": 2}"#),
            Some(vec![1, 1])
        );
        assert!(planned(&plan).is_empty());
        // The escaped spelling of a planned key is still that key.
        meanings(&mut plan, r#"{"b": 1}"#);
        assert_eq!(planned(&plan), ["b"]);
        assert_eq!(meanings(&mut plan, r#"{"\u0062x": 1}"#), Some(vec![2]));
    }

    #[test]
    fn a_planned_key_without_its_colon_is_invalid() {
        let mut plan = KeyPlan::default();
        meanings(&mut plan, r#"{"a": 1}"#);
        assert_eq!(meanings(&mut plan, r#"{"a" 1}"#), None);
        assert_eq!(meanings(&mut plan, r#"{"a": 1"#), None);
        // The failed object left the plan as it was.
        assert_eq!(planned(&plan), ["a"]);
    }
}
