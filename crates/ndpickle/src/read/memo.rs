//! The unpickler's memo: a dense vector for the keys `MEMOIZE` hands out (0, 1, 2, ... in
//! order, the common case) and a SipHash map for any other key a `PUT` names. Lookups of
//! ordinary keys are an index, and hostile keys cost no more than a hash-map entry.

use std::collections::HashMap;

use super::arena::Slot;

/// Memo entries by key.
#[derive(Default)]
pub(crate) struct Memo {
    /// Entries for keys `0..dense.len()`; `None` where a key was skipped.
    dense: Vec<Option<Slot>>,
    /// Entries for keys at or past `dense.len()` (never below it).
    sparse: HashMap<u64, Slot>,
    /// Number of keys present.
    len: usize,
}

impl Memo {
    /// Number of keys present.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The entry for `key`.
    pub(crate) fn get(&self, key: u64) -> Option<Slot> {
        match usize::try_from(key).ok().and_then(|k| self.dense.get(k)) {
            Some(entry) => *entry,
            None => self.sparse.get(&key).copied(),
        }
    }

    /// Whether `key` is present.
    pub(crate) fn contains(&self, key: u64) -> bool {
        self.get(key).is_some()
    }

    /// Sets the entry for `key`, replacing any earlier one.
    pub(crate) fn insert(&mut self, key: u64, slot: Slot) {
        let dense_len = self.dense.len() as u64;
        if key < dense_len {
            // In range of `dense`, so `key` fits a usize.
            let entry = &mut self.dense[key as usize];
            if entry.is_none() {
                self.len += 1;
            }
            *entry = Some(slot);
        } else if key == dense_len {
            self.dense.push(Some(slot));
            self.len += 1;
            // Keys PUT ahead of time join the dense part once it reaches them.
            let mut next = key + 1;
            while !self.sparse.is_empty()
                && let Some(s) = self.sparse.remove(&next)
            {
                self.dense.push(Some(s));
                next += 1;
            }
        } else if self.sparse.insert(key, slot).is_none() {
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_sparse_and_replaced_keys() {
        let mut m = Memo::default();
        m.insert(0, Slot::Int(0));
        m.insert(2, Slot::Int(2)); // ahead of the dense part
        m.insert(u64::MAX, Slot::Int(-1));
        assert_eq!(m.len(), 3);
        assert!(m.contains(2) && !m.contains(1) && m.contains(u64::MAX));
        m.insert(1, Slot::Int(1)); // fills the gap; 2 moves into the dense part
        assert_eq!(m.len(), 4);
        assert_eq!(m.dense.len(), 3);
        assert!(m.sparse.len() == 1);
        m.insert(1, Slot::Int(10)); // replaced, not counted twice
        assert_eq!(m.len(), 4);
        assert!(matches!(m.get(1), Some(Slot::Int(10))));
        assert!(matches!(m.get(2), Some(Slot::Int(2))));
        assert!(matches!(m.get(u64::MAX), Some(Slot::Int(-1))));
        assert!(m.get(3).is_none());
    }
}
