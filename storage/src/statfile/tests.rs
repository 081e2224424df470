//! Tests of the write and read logic of one file, over an in-memory image.

use super::*;
use crate::format::{CreateParams, PAGE_SIZE};

fn file(interval: i32, flags: i32, zero: i64) -> (FileState, Vec<u8>) {
    let h = Header::new_file(&CreateParams {
        interval,
        page_count: 2,
        flags,
        zero_time: zero,
        lambda: if flags & FLAG_TRAILING != 0 { 0.9 } else { 0.0 },
        season: if flags & FLAG_TRAILING != 0 { 600 } else { 0 },
        fixed_count: if flags & FLAG_COUNTER_AGGREGATE != 0 {
            30
        } else {
            0
        },
        unit: String::new(),
        name: "t".into(),
    });
    (FileState::new(h), vec![0u8; PAGE_SIZE * 3])
}

#[test]
fn gauge_write_merges_and_tracks_window() {
    let (mut f, mut img) = file(10, 0, 1600000000);
    let mut s = ImageSlots {
        image: &mut img,
        page_size: 8192,
    };
    assert!(f
        .write(&mut s, &Bucket::sample(1600000003, 2.0), Mode::Aggregate)
        .unwrap());
    assert!(f
        .write(&mut s, &Bucket::sample(1600000007, 4.0), Mode::Aggregate)
        .unwrap());
    let b = f.read_slot(&s, 0);
    assert_eq!(
        (b.time, b.sum, b.count, b.min, b.max),
        (1600000000, 6.0, 2, 2.0, 4.0)
    );
    assert_eq!(
        (f.header.last_bucket, f.header.last_time),
        (0, 0),
        "index 0 keeps last_time 0"
    );
    assert_eq!(f.newest_bucket_time(), 1600000000);
    assert_eq!(
        f.write(
            &mut s,
            &Bucket::sample(1600000000 + 10 * 600, 1.0),
            Mode::Aggregate
        ),
        Ok(true)
    );
    assert_eq!(f.header.last_bucket, 600);
    assert_eq!(f.header.first_bucket, 600 - 512 + 1);
    // Older than the window: refused, nothing changes.
    let before = f.header.clone();
    assert_eq!(
        f.write(
            &mut s,
            &Bucket::sample(1600000000 + 10 * 88, 1.0),
            Mode::Aggregate
        ),
        Ok(false)
    );
    assert_eq!(f.header, before);
    // A stale slot is reset, not merged into.
    assert_eq!(
        f.write(
            &mut s,
            &Bucket::sample(1600000000 + 10 * 512, 9.0),
            Mode::Aggregate
        ),
        Ok(true)
    );
    let b = f.read_slot(&s, 0);
    assert_eq!((b.sum, b.count), (9.0, 1));
    assert_eq!(f.header.cumulative_count, 4);
}

#[test]
fn counter_aggregate_forces_count_and_collated_replaces() {
    let (mut f, mut img) = file(300, FLAG_COUNTER_AGGREGATE, 1600002600);
    let mut s = ImageSlots {
        image: &mut img,
        page_size: 8192,
    };
    f.write(&mut s, &Bucket::empty_at(1600002620), Mode::Aggregate)
        .unwrap();
    let mut b = Bucket::empty_at(1600002630);
    b.collated_update(0.5, 1600002630);
    f.write(&mut s, &b, Mode::Aggregate).unwrap();
    let got = f.read_slot(&s, 0);
    assert_eq!(
        (got.count, got.min, got.sum, got.time),
        (30, 0.0, 0.5, 1600002600)
    );

    let (mut c, mut img) = file(10, FLAG_COLLATED, 1600000000);
    let mut s = ImageSlots {
        image: &mut img,
        page_size: 8192,
    };
    c.write(&mut s, &Bucket::sample(1600000010, 3.0), Mode::Aggregate)
        .unwrap();
    c.write(&mut s, &Bucket::sample(1600000010, 5.0), Mode::Aggregate)
        .unwrap();
    assert_eq!(c.read_slot(&s, 1).sum, 5.0);
    assert_eq!(c.header.cumulative_sum, 8.0);
}

#[test]
fn trailing_window_blends_season_ago() {
    let (mut f, mut img) = file(10, FLAG_TRAILING, 1600000000);
    let mut s = ImageSlots {
        image: &mut img,
        page_size: 8192,
    };
    // Fill a bucket a season (600 s) before, then push it through the window.
    for k in 0..4 {
        f.write(
            &mut s,
            &Bucket::sample(1600000000 + 10 * k, 10.0),
            Mode::Aggregate,
        )
        .unwrap();
    }
    assert_eq!(
        s.get(0).sum,
        10.0,
        "first entry pushed out by the fourth time"
    );
    for k in 0..4 {
        f.write(
            &mut s,
            &Bucket::sample(1600000600 + 10 * k, 20.0),
            Mode::Aggregate,
        )
        .unwrap();
    }
    let b = s.get(60);
    assert!((b.sum - (10.0 * 0.9 + 20.0 * 0.1)).abs() < 1e-9);
    assert_eq!((b.count, b.time), (1, 1600000600));
}

#[test]
fn put_overwrite_is_idempotent_and_never_regresses() {
    let (mut f, mut img) = file(10, 0, 1600000000);
    let buckets: Vec<Bucket> = (0..5)
        .map(|k| Bucket::sample(1600000000 + 10 * k, k as f64))
        .collect();
    let mut s = ImageSlots {
        image: &mut img,
        page_size: 8192,
    };
    let r = f.put_overwrite(&mut s, &buckets);
    assert_eq!(r.written, 5);
    let snapshot = img.clone();
    let h = f.header.clone();
    let mut s = ImageSlots {
        image: &mut img,
        page_size: 8192,
    };
    f.put_overwrite(&mut s, &buckets);
    assert_eq!(img, snapshot);
    assert_eq!(f.header, h);
    let mut s = ImageSlots {
        image: &mut img,
        page_size: 8192,
    };
    let r = f.put_overwrite(&mut s, &[Bucket::sample(1600000005, 1.0)]);
    assert_eq!(r.rejected, 1);
    f.put_overwrite(&mut s, &[Bucket::sample(1600000010, 7.0)]);
    assert_eq!(
        f.header.last_bucket, 4,
        "an older put never moves last_bucket back"
    );
    let (got, next) = f.read_valid(&s, 1600000000, 1600000040, 100, 100);
    assert_eq!(got.len(), 5);
    assert_eq!(got[1].sum, 7.0);
    assert_eq!(next, 1600000050);
}

/// Slots where only some pages are resident (the store's situation).
struct Partial<'a> {
    inner: ImageSlots<'a>,
    resident: Vec<u32>,
}

impl Slots for Partial<'_> {
    fn has(&self, slot: i64) -> bool {
        self.resident.contains(&((slot / 256) as u32))
    }
    fn get(&self, slot: i64) -> Bucket {
        assert!(self.has(slot), "read of a page that is not resident");
        self.inner.get(slot)
    }
    fn put(&mut self, slot: i64, b: &Bucket) {
        assert!(self.has(slot), "write of a page that is not resident");
        self.inner.put(slot, b)
    }
}

/// A file read from disk (not fresh) whose tail is verified up to `last_bucket`, with
/// no page resident.
fn opened_from_disk<'a>(f0: &FileState, img: &'a mut [u8]) -> (FileState, Partial<'a>) {
    let mut f = FileState::new(f0.header.clone());
    f.tail_verified = 0;
    let s = Partial {
        inner: ImageSlots {
            image: img,
            page_size: 8192,
        },
        resident: vec![],
    };
    (f, s)
}

#[test]
fn overlay_avoids_reads_and_needs_page_changes_nothing() {
    let (f0, mut img) = file(10, 0, 1600000000);
    let (mut f, mut s) = opened_from_disk(&f0, &mut img);
    // New newest buckets need no page: they go to the overlay.
    for k in 1..=3 {
        let t = 1600000000 + 10 * k;
        assert_eq!(
            f.write(&mut s, &Bucket::sample(t, 1.0), Mode::Aggregate),
            Ok(true)
        );
        assert_eq!(
            f.write(&mut s, &Bucket::sample(t + 1, 2.0), Mode::Aggregate),
            Ok(true)
        );
    }
    assert!(f.has_overlay());
    // A late sample for index 0 (not in the overlay) that must know the old value
    // (fill-empty) needs page 0, and changes nothing.
    let before = (f.header.clone(), f.overlay.clone());
    assert_eq!(f.overlay.len(), 3);
    assert_eq!(
        f.write(&mut s, &Bucket::sample(1600000000, 5.0), Mode::FillEmpty),
        Err(NeedPage(0))
    );
    assert_eq!((f.header.clone(), f.overlay.clone()), before);
    // Readers see overlay values.
    let (got, _) = f.read_valid(&s, 1600000010, 1600000030, 10, 10);
    assert_eq!(
        got.iter().map(|b| (b.sum, b.count)).collect::<Vec<_>>(),
        vec![(3.0, 2); 3]
    );
    // Once the page is resident the overlay moves into it.
    s.resident.push(0);
    f.absorb_overlay(&mut s);
    assert!(!f.has_overlay());
    assert_eq!(s.get(2).sum, 3.0);
    assert_eq!(
        f.write(&mut s, &Bucket::sample(1600000000, 5.0), Mode::FillEmpty),
        Ok(true)
    );
    // A crash left a valid bucket past last_bucket: with the tail unverified, a new
    // newest bucket merges into it instead of replacing it.
    s.inner.put(40, &Bucket::sample(1600000400, 7.0));
    let mut g = FileState::new(f.header.clone());
    g.verify_tail(&s);
    assert_eq!(g.tail_verified, 40);
    g.write(&mut s, &Bucket::sample(1600000400, 1.0), Mode::Aggregate)
        .unwrap();
    let b = g.read_slot(&s, 40);
    assert_eq!((b.sum, b.count), (8.0, 2));
}

/// An aggregate write into a slot whose page is not resident keeps its samples pending
/// and merges them into the page's value when the page comes: the same buckets and
/// header as writing with every page resident.
#[test]
fn pending_merges_equal_merging_in_place() {
    for flags in [0, FLAG_COUNTER_AGGREGATE] {
        let zero = 1600000000;
        let (base, mut img_a) = file(10, flags, zero);
        // Data on disk first, written with the page resident.
        let mut f_a = base.clone();
        {
            let mut s = ImageSlots {
                image: &mut img_a,
                page_size: 8192,
            };
            for k in 0..40 {
                f_a.write(
                    &mut s,
                    &Bucket::sample(zero + 10 * k, k as f64),
                    Mode::Aggregate,
                )
                .unwrap();
            }
        }
        let mut img_b = img_a.clone();
        let mut f_b = FileState::new(f_a.header.clone());
        f_b.tail_verified = f_b.header.last_bucket;
        // Samples into old, current, new and wrapped-around slots, some twice.
        let times: Vec<i64> = (0..300)
            .map(|i| zero + ((i * 37) % 90) * 10 + (i % 3))
            .chain((0..50).map(|i| zero + 5100 + i * 10))
            .collect();
        let mut s_a = ImageSlots {
            image: &mut img_a,
            page_size: 8192,
        };
        let mut s_b = Partial {
            inner: ImageSlots {
                image: &mut img_b,
                page_size: 8192,
            },
            resident: vec![],
        };
        let mut pending_seen = false;
        for (i, &t) in times.iter().enumerate() {
            let b = Bucket::sample(t, (i % 11) as f64 - 3.0);
            assert_eq!(f_a.write(&mut s_a, &b, Mode::Aggregate), Ok(true));
            loop {
                match f_b.write(&mut s_b, &b, Mode::Aggregate) {
                    Ok(r) => {
                        assert!(r);
                        break;
                    }
                    Err(NeedPage(p)) => s_b.resident.push(p),
                }
            }
            pending_seen |= f_b.overlay.iter().any(|o| o.pending);
            // A spill now and then, then the pages leave the cache again.
            if let Some(p) = f_b.overlay_spill_page() {
                s_b.resident.push(p);
                f_b.absorb_overlay(&mut s_b);
                s_b.resident.clear();
            }
        }
        assert!(pending_seen, "no write went pending");
        f_a.absorb_overlay(&mut s_a);
        s_b.resident = vec![0, 1];
        f_b.absorb_overlay(&mut s_b);
        assert!(!f_b.has_overlay());
        assert_eq!(f_a.header, f_b.header);
        for slot in 0..(2 * 256) {
            let off = 8192 + slot * 32;
            let (a, b) = (
                Bucket::from_bytes(&img_a[off..off + 32]),
                Bucket::from_bytes(&img_b[off..off + 32]),
            );
            assert_eq!(a, b, "slot {slot} (flags {flags})");
        }
        assert!(img_a == img_b, "bucket pages differ (flags {flags})");
    }
}

/// A read of the newest buckets, which the overlay holds, needs no page; an older
/// one, or one over a pending merge, needs its page.
#[test]
fn reads_of_overlay_slots_need_no_page() {
    let zero = 1600000000;
    let (f0, mut img) = file(10, 0, zero);
    let (mut f, mut s) = opened_from_disk(&f0, &mut img);
    for k in 1..=5 {
        f.write(
            &mut s,
            &Bucket::sample(zero + 10 * k, k as f64),
            Mode::Aggregate,
        )
        .unwrap();
    }
    let mut need = Vec::new();
    f.pages_for_range(1, 5, &mut need);
    assert!(need.is_empty(), "{need:?}");
    let (got, _) = f.read_valid(&s, zero + 10, zero + 50, 10, 10);
    assert_eq!(
        got.iter().map(|b| b.sum).collect::<Vec<_>>(),
        vec![1.0, 2.0, 3.0, 4.0, 5.0]
    );
    // Index 0 is not in the overlay: its page is needed.
    f.pages_for_range(0, 6, &mut need);
    assert_eq!(need, vec![0]);
    // A pending merge (a second sample into index 3 after its entry left): page needed.
    f.overlay.retain(|o| o.slot() != 3);
    f.write(&mut s, &Bucket::sample(zero + 31, 1.0), Mode::Aggregate)
        .unwrap();
    assert!(f.overlay.iter().any(|o| o.slot() == 3 && o.pending));
    need.clear();
    f.pages_for_range(3, 1, &mut need);
    assert_eq!(need, vec![0]);
}
