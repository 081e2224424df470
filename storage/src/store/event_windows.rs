//! Event counters' collation windows in the store: late events merged into stored
//! buckets, a promoted replica's windows opened over its buckets, windows closed at
//! shutdown (docs/file-format.md, "How buckets are written").

use super::{FileId, Store, StoreError};
use crate::counter::{Reject, Sample};

impl Store {
    /// An event older than its counter's window: merged into the stored buckets while
    /// the finest file's ring still holds its time, rejected as from_past after that.
    pub(super) async fn record_late_event(
        &self,
        key: &str,
        ids: &[FileId],
        finest: i64,
        s: Sample,
    ) -> Result<Option<Reject>, StoreError> {
        let bt = s.time - s.time.rem_euclid(finest.max(1));
        if !self.files.with_state(ids[0], |st| st.holds(bt))? {
            self.counters.borrow_mut().count_reject(Reject::FromPast);
            return Ok(Some(Reject::FromPast));
        }
        let (stored, _) = self.read_valid_buckets(ids[0], bt, bt, 1, 1).await?;
        let writes = {
            let mut counters = self.counters.borrow_mut();
            counters.stats.late += 1;
            let col = counters.collation(key).ok_or(StoreError::Gone)?;
            col.record_late(s.time, s.sum, ids.len(), stored.first())
        };
        self.apply_writes(ids, &writes).await?;
        Ok(None)
    }

    /// A promoted replica's first event for a counter opens its window over the buckets
    /// its finest file already holds at the window's times.
    pub(super) async fn open_seeded_window(
        &self,
        key: &str,
        finest_file: FileId,
        interval: i64,
        t: i64,
    ) -> Result<(), StoreError> {
        let f = interval.max(1);
        let top = t - t.rem_euclid(f);
        let low = top - (crate::counter::WINDOW as i64 - 1) * f;
        let (existing, _) = self
            .read_valid_buckets(
                finest_file,
                low,
                top,
                crate::counter::WINDOW,
                crate::counter::WINDOW,
            )
            .await?;
        self.counters
            .borrow_mut()
            .set_collation(key, crate::counter::Collation::seeded(f, t, &existing));
        Ok(())
    }

    /// Close every event counter's collation window: write what it holds.
    pub(super) async fn close_collations(&self, now: i64) -> Result<(), StoreError> {
        for key in self.counter_keys() {
            let Some(ids) = self.counters.borrow().collated_files(&key) else {
                continue;
            };
            let writes = self
                .counters
                .borrow_mut()
                .collation(&key)
                .map(|col| col.close(now, ids.len()))
                .unwrap_or_default();
            let _permit = self.lock_writes().await?;
            self.apply_writes(&ids, &writes).await?;
        }
        Ok(())
    }
}
