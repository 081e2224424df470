//! Model tests of the query path (storage::query) over an in-memory ring.
//!
//! (a) Ring wrap-around: gauge samples written over more than two laps of a 512-slot ring
//!     by the reference file-image writer (`testimage`); `plan` + `finish` for random ranges must equal a naive model
//!     (a map from bucket time to merged bucket, restricted to the ring window and the
//!     range, merged into the reported interval).
//! (b) Merge order: merging a set of buckets in any order gives the same count, min and
//!     max, and the same sum up to f64 rounding.

use istatd_storage::format::{self, Bucket};
use istatd_storage::query::{self, QueryParams};
use istatd_storage::testimage::{Image, PutMode};
use proptest::prelude::*;
use std::collections::BTreeMap;

const INTERVAL: i64 = 10;

fn floor_to(t: i64, iv: i64) -> i64 {
    t - t.rem_euclid(iv)
}

/// What the query should return, from the model map alone.
fn model_answer(
    model: &BTreeMap<i64, Bucket>,
    win_lo: i64,
    win_hi: i64,
    start: i64,
    ns: i64,
    ne: i64,
    interval: i64,
) -> Vec<Bucket> {
    // The file serves the query only when the bucket of `start` is in the ring.
    let sb = floor_to(start, INTERVAL);
    if sb < win_lo || sb > win_hi {
        return vec![];
    }
    // Slots read: `count` buckets from the bucket of the normalized start.
    let delta = floor_to(ne, INTERVAL) - floor_to(ns, INTERVAL);
    let count = if delta == 0 { 1 } else { delta / INTERVAL };
    let read_hi = floor_to(ns, INTERVAL) + count * INTERVAL; // exclusive
    let (lo, hi) = (win_lo.max(ns), win_hi.min(ne));
    if lo > hi {
        return vec![];
    }
    let kept: Vec<Bucket> = model
        .range(lo..=hi)
        .filter(|(&t, _)| t < read_hi)
        .map(|(_, b)| *b)
        .collect();
    if interval <= INTERVAL {
        return kept;
    }
    let mut groups: BTreeMap<i64, Bucket> = BTreeMap::new();
    for b in kept {
        let g = ns + (b.time - ns).div_euclid(interval) * interval;
        groups
            .entry(g)
            .and_modify(|r| r.merge(&b))
            .or_insert(Bucket { time: g, ..b });
    }
    groups.into_values().collect()
}

fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![8 => 0i64..=15, 1 => 16i64..=400]
}

fn samples() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), Just(1i64), 2i64..60, 60i64..3000]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ring_wraparound_matches_model(
        zero_k in 100_000i64..200_000,
        lead in 0i64..3000,
        gaps in prop::collection::vec(gap(), 2200..2600),
        values in prop::collection::vec(-1000i32..1000, 2600),
        queries in prop::collection::vec((0i64..9000, 0i64..30000, samples()), 12),
    ) {
        let zero = zero_k * INTERVAL;
        let mut ring = Image::new(INTERVAL as i32, 2, 0, zero, 0);
        let mut model: BTreeMap<i64, Bucket> = BTreeMap::new();
        let mut t = zero - lead;
        for (i, g) in gaps.iter().enumerate() {
            t += g;
            let v = values[i] as f64 / 8.0;
            ring.put(Bucket::sample(t, v), PutMode::Merge);
            let bt = format::bucket_time(t, INTERVAL);
            model.entry(bt).or_insert(Bucket::empty_at(bt)).merge(&Bucket::sample(bt, v));
        }
        let c = ring.header.capacity();
        prop_assert_eq!(c, 512);
        let first_ix = format::bucket_index(zero - lead, zero, INTERVAL);
        prop_assume!(ring.header.last_bucket - first_ix > 2 * c);

        let win_lo = zero + (ring.header.last_bucket - c + 1) * INTERVAL;
        let win_hi = zero + ring.header.last_bucket * INTERVAL;
        let now = win_hi + 100;
        for (off, len, n) in queries {
            let start = win_lo - 2000 + off;
            let end = start + len;
            let p = QueryParams { start, end, max_samples: n, trailing: false };
            let pl = query::plan(&[&ring.header], &p, now);
            let (ns, ne, iv) = query::normalize(start, end, INTERVAL, n);
            prop_assert_eq!((pl.start, pl.end, pl.interval), (ns, ne, iv));
            prop_assert!(pl.read_count >= 0 && pl.read_count <= c);
            let got = match pl.file {
                None => vec![],
                Some(i) => {
                    prop_assert_eq!(i, 0);
                    let slots = query::read_slots_from_image(
                        &ring.header, &ring.bytes, pl.read_start_index, pl.read_count);
                    prop_assert_eq!(slots.len() as i64, pl.read_count);
                    query::finish(&pl, &ring.header, &slots).buckets
                }
            };
            let want = model_answer(&model, win_lo, win_hi, start, ns, ne, iv);
            prop_assert_eq!(&got, &want, "start {} end {} samples {}", start, end, n);
            prop_assert!(got.iter().all(|b| b.time != 0 && b.count > 0));
        }
    }

    #[test]
    fn merge_order_does_not_matter(
        (orig, shuffled) in prop::collection::vec(
            (-1.0e6f64..1.0e6, 1i32..100, -1.0e3f32..1.0e3, 0.0f32..1.0e3, 0.0f32..1.0e6),
            1..40,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(sum, count, min, span, sum_sq)| Bucket {
                    time: 1000,
                    sum,
                    min,
                    max: min + span,
                    count,
                    sum_sq,
                })
                .collect::<Vec<_>>()
        })
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
    ) {
        let merge_all = |bs: &[Bucket]| {
            let mut r = Bucket::EMPTY;
            for b in bs {
                r.merge(b);
            }
            r
        };
        let a = merge_all(&orig);
        let b = merge_all(&shuffled);
        prop_assert_eq!(a.count, b.count);
        prop_assert_eq!(a.count, orig.iter().map(|b| b.count).sum::<i32>());
        prop_assert_eq!(a.min, b.min);
        prop_assert_eq!(a.max, b.max);
        let abs_sum: f64 = orig.iter().map(|b| b.sum.abs()).sum();
        prop_assert!((a.sum - b.sum).abs() <= abs_sum * 1e-12 + 1e-9, "{} vs {}", a.sum, b.sum);
        let sq_sum: f64 = orig.iter().map(|b| b.sum_sq as f64).sum();
        prop_assert!(((a.sum_sq - b.sum_sq) as f64).abs() <= sq_sum * 1e-5 + 1e-3);
        // The merge is also what the query's reduction applies within a group.
        let red = query::reduce(&orig, 1000, 60, 0);
        prop_assert_eq!(red.len(), 1);
        prop_assert_eq!((red[0].time, red[0].count, red[0].min, red[0].max), (1000, a.count, a.min, a.max));
    }
}
