//! Arbitrary bytes never panic the readers, and replicated puts are idempotent and never
//! regress a newer bucket (the guarantees of docs/file-format.md, "Operations for
//! replication").

use istatd_storage::format::{Bucket, CreateParams, Header, PAGE_SIZE};
use istatd_storage::statfile::{FileState, ImageSlots};
use istatd_storage::tools;
use proptest::prelude::*;

fn valid_image() -> Vec<u8> {
    let h = Header::new_file(&CreateParams {
        interval: 10,
        page_count: 2,
        flags: 0,
        zero_time: 1_600_000_000,
        lambda: 0.0,
        season: 0,
        fixed_count: 0,
        unit: String::new(),
        name: "f".into(),
    });
    let mut img = vec![0u8; PAGE_SIZE * 3];
    img[..464].copy_from_slice(&h.to_bytes());
    img
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random bytes, random lengths: every reader returns or errors, never panics.
    #[test]
    fn readers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..30000)) {
        let _ = Header::parse_checked(&bytes, bytes.len() as u64);
        let _ = tools::dump_csv(&bytes);
        let _ = tools::dump_full(&bytes, false);
        let _ = tools::dump_full(&bytes, true);
        let _ = tools::info("p", &bytes);
    }

    /// A valid file with random header fields and random bucket bytes.
    #[test]
    fn readers_never_panic_on_corrupted_valid_files(
        edits in proptest::collection::vec((0usize..PAGE_SIZE * 3, any::<u8>()), 1..64),
        header_edits in proptest::collection::vec((16usize..464, any::<u8>()), 0..8),
    ) {
        let mut img = valid_image();
        for (at, v) in edits.iter().chain(header_edits.iter()) {
            img[*at] = *v;
        }
        if let Ok(h) = Header::parse_checked(&img, img.len() as u64) {
            let st = FileState::new(h);
            let mut copy = img.clone();
            let s = ImageSlots { image: &mut copy, page_size: st.header.page_size };
            let _ = st.read_valid(&s, i64::MIN / 4, i64::MAX / 4, 100, 10_000);
        }
        let _ = tools::dump_csv(&img);
        let _ = tools::dump_full(&img, true);
        let mut copy = img.clone();
        let _ = tools::import(&mut copy, "1600000000 1 1 1 1 1\n", false);
    }

    /// Applying the same put twice leaves identical bytes; a put never moves
    /// last_bucket backwards and never touches slots it was not given.
    #[test]
    fn put_overwrite_idempotent_and_monotonic(
        first in proptest::collection::vec((0i64..2000, -1e6f64..1e6), 1..80),
        second in proptest::collection::vec((0i64..2000, -1e6f64..1e6), 1..80),
    ) {
        let mut img = valid_image();
        let h = Header::parse_checked(&img, img.len() as u64).unwrap();
        let mut st = FileState::new(h);
        let z = st.zero_time();
        let to_buckets = |v: &[(i64, f64)]| -> Vec<Bucket> {
            v.iter().map(|(k, x)| Bucket::sample(z + 10 * k, *x)).collect()
        };
        let a = to_buckets(&first);
        let b = to_buckets(&second);
        {
            let mut s = ImageSlots { image: &mut img, page_size: 8192 };
            st.put_overwrite(&mut s, &a);
        }
        let last_after_a = st.header.last_bucket;
        {
            let mut s = ImageSlots { image: &mut img, page_size: 8192 };
            st.put_overwrite(&mut s, &b);
        }
        prop_assert!(st.header.last_bucket >= last_after_a);
        let snapshot = img.clone();
        let header = st.header.clone();
        {
            let mut s = ImageSlots { image: &mut img, page_size: 8192 };
            st.put_overwrite(&mut s, &b);
        }
        prop_assert_eq!(&img, &snapshot);
        prop_assert_eq!(&st.header, &header);
        // Every bucket of `b` that is inside the final window is readable as given
        // (the last one given for its time wins).
        let s = ImageSlots { image: &mut img, page_size: 8192 };
        for bk in &b {
            let ix = st.index_of(bk.time);
            if ix > st.header.last_bucket - st.capacity() {
                let last_given = b.iter().rev().find(|x| x.time == bk.time).unwrap();
                prop_assert_eq!(st.read_slot(&s, st.slot_of_index(ix)), *last_given);
            }
        }
    }
}
