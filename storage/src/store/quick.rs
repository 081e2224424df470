//! Recording a batch's samples with one lookup each: the owner shard's usual case,
//! a gauge sample for a counter whose files all exist and are loaded.
//!
//! At 100,000 counters every lookup by name is a cache miss or two, and
//! [`Store::record_from`] makes several per sample to cover
//! creation, loading and event counters. A [`QuickWriter`] takes the write lock once
//! for a batch and answers "not here" for anything else, which the caller then
//! records through `record_from` in order.

use glommio::sync::Permit;

use super::counters::{CounterState, FileIds};
use super::{is_event_header, RecordOutcome, Store, StoreError};
use crate::counter::Sample;

/// Holds the store's write lock while a batch's ready samples are recorded.
pub struct QuickWriter<'a> {
    store: &'a Store,
    _permit: Permit<'a>,
}

impl Store {
    /// Where a counter stands for recording, in one lookup (a batch's precheck runs
    /// it for every sample, and at 100,000 counters each lookup is a cache miss).
    pub fn counter_state(&self, key: &str) -> CounterState {
        let counters = self.counters.borrow();
        let Some(files) = counters.files(key) else {
            return CounterState::Missing;
        };
        let mut state = CounterState::Ready;
        for f in files {
            match f {
                None => return CounterState::Missing,
                Some(id) if !self.files.is_loaded(*id) => state = CounterState::Cold,
                Some(_) => {}
            }
        }
        state
    }

    /// Every retention file of a counter, when all exist and are loaded.
    pub(super) fn ready_files(&self, key: &str) -> Option<FileIds> {
        let ids = self.counters.borrow().all_files(key)?;
        ids.as_slice()
            .iter()
            .all(|&id| self.files.is_loaded(id))
            .then_some(ids)
    }

    /// A loaded counter's files with whether it is an event counter and its finest
    /// file's interval.
    pub(super) fn counter_kind(&self, ids: FileIds) -> Result<(FileIds, bool, i64), StoreError> {
        let (event, finest) = self.files.with_state(ids.as_slice()[0], |s| {
            (is_event_header(&s.header), s.interval())
        })?;
        Ok((ids, event, finest))
    }

    /// A writer for one batch; other writers wait until it drops.
    pub async fn quick_writer(&self) -> Result<QuickWriter<'_>, StoreError> {
        Ok(QuickWriter {
            store: self,
            _permit: self.lock_writes().await?,
        })
    }
}

impl QuickWriter<'_> {
    /// Record a sample of a gauge counter whose files are all loaded, as
    /// [`Store::record_from`] would; `None` (nothing done) for any other counter.
    pub async fn try_record(
        &self,
        key: &str,
        s: Sample,
        now: i64,
    ) -> Option<Result<RecordOutcome, StoreError>> {
        let store = self.store;
        let ids = {
            let counters = store.counters.borrow();
            let (ids, event) = store.files.loaded_kind(counters.files(key)?)?;
            if event {
                return None;
            }
            ids
        };
        let recorded = store.record_gauge(ids.as_slice(), &s, now).await;
        Some(recorded.map(|rejected| RecordOutcome {
            created: false,
            rejected,
            late: false,
        }))
    }

    /// Whether a counter exists with all its retention files (making it exist, a
    /// parent's `create_counter`, would do nothing).
    pub fn exists(&self, key: &str) -> bool {
        self.store.has_counter(key)
    }
}
