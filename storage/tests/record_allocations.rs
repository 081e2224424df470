//! Recording a sample into an existing gauge counter allocates nothing: the hot path
//! of ingest stays off the allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use glommio::{LocalExecutorBuilder, Placement};
use istatd_storage::counter::Sample;
use istatd_storage::retention::parse_retentions;
use istatd_storage::store::{Store, StoreOptions};

struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Only the executor thread under test counts (glommio's helper threads and the
    /// test harness may allocate at any time).
    static THIS_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) && THIS_THREAD.with(|t| t.get()) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn recording_into_an_existing_counter_does_not_allocate() {
    let dir = std::env::temp_dir().join(format!("istatd-alloc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.clone();
    let (gauge_allocs, event_allocs) = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(move || async move {
            let store = Store::open(StoreOptions::new(
                &d,
                parse_retentions("10s:1h,5m:1d").unwrap(),
            ))
            .await
            .unwrap();
            let now = 1_600_000_000;
            for k in 0..50 {
                store
                    .record("hot.gauge", false, Sample::value(now + k, 1.0), now + 100)
                    .await
                    .unwrap();
                store
                    .record("hot.event", true, Sample::value(now + k, 1.0), now + 100)
                    .await
                    .unwrap();
            }
            THIS_THREAD.with(|t| t.set(true));
            // Same buckets as the warm-up's last ones: no new pages, no window shifts.
            ALLOCS.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
            for _ in 0..1000 {
                store
                    .record("hot.gauge", false, Sample::value(now + 49, 2.0), now + 100)
                    .await
                    .unwrap();
            }
            COUNTING.store(false, Ordering::SeqCst);
            let gauge = ALLOCS.swap(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
            for _ in 0..1000 {
                store
                    .record("hot.event", true, Sample::value(now + 49, 2.0), now + 100)
                    .await
                    .unwrap();
            }
            COUNTING.store(false, Ordering::SeqCst);
            let event = ALLOCS.load(Ordering::SeqCst);
            store.close(now + 100).await.unwrap();
            (gauge, event)
        })
        .unwrap()
        .join()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        gauge_allocs, 0,
        "allocations while recording 1000 gauge samples"
    );
    // An event sample writes the finest file only on power-of-two collation counts,
    // which may allocate a short write list; far fewer than one per sample.
    assert!(
        event_allocs < 50,
        "{event_allocs} allocations for 1000 event samples"
    );
}
