//! The store under damage and faults: a WAL segment with a bad byte anywhere, a ledger cut in
//! half, Parquet segments with a torn or damaged footer, a disk that fills up. In each case the
//! store opens, says what it skipped or quarantined, keeps everything intact, and loses nothing
//! it acknowledged that the damage did not destroy.

mod common;
#[path = "../../tests/common/small_disk.rs"]
mod small_disk;

use std::path::{Path, PathBuf};

use common::*;
use small_disk::SmallDisk;
use tunnelwatch_queries::{Store, StoreOptions, Sync, TableName, quarantine, wal};

/// Four appends of ten rows, each followed by its mark (`k` at 10, 20, 30, 40), left in the WAL
/// (a crash before any flush). Returns the WAL segment: a header frame, then per append a
/// batch, a mark and a commit (13 frames).
fn four_appends(root: &Path) -> PathBuf {
    let (mut store, _) = Store::open(root, opts(1 << 20)).unwrap();
    for i in 0..4 {
        store
            .append(
                vec![(TableName::Metrics, rows(i * 10, 10, 1))],
                Some(mark("k", (i as u64 + 1) * 10)),
            )
            .unwrap();
    }
    wal_segment(root)
}

fn wal_segment(root: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(root.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

/// Where each frame of a valid segment starts, and the end.
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut pos = 0;
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 6..pos + 10].try_into().unwrap()) as usize;
        pos += 14 + len;
        starts.push(pos);
    }
    assert_eq!(pos, bytes.len());
    starts
}

/// What frame `i` of [`four_appends`]'s segment is.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Header,
    Batch(u64),
    Mark(u64),
    Commit(u64),
}

fn role(i: usize) -> Role {
    let j = (i.saturating_sub(1) / 3) as u64;
    match i {
        0 => Role::Header,
        _ if i % 3 == 1 => Role::Batch(j),
        _ if i % 3 == 2 => Role::Mark(j),
        _ => Role::Commit(j),
    }
}

/// What a bad byte in frame `i` costs: (batches and marks replayed, rows, the mark offset the
/// store ends with). A damaged frame is lost; a damaged commit joins its append to the next,
/// except the last, which leaves that append cut short; marks after damage are held back (a
/// damaged header holds back all of them).
fn cost(i: usize) -> (usize, usize, u64) {
    match role(i) {
        Role::Header => (8, 40, 0),
        Role::Batch(j) => (7, 30, 10 * j),
        Role::Mark(j) => (7, 40, 10 * j),
        Role::Commit(3) => (6, 30, 30),
        Role::Commit(j) => (8, 40, 10 * (j + 1)),
    }
}

/// Bytes no reader uses: the table byte of a frame that is not a batch.
fn is_unused_byte(starts: &[usize], offset: usize) -> bool {
    starts
        .iter()
        .enumerate()
        .any(|(i, s)| !matches!(role(i), Role::Batch(_)) && offset == s + 5)
}

/// A bad byte anywhere in a segment (sampled as below) costs exactly what [`cost`] says, and
/// is reported as damage where it is or, in the last commit, as a torn tail.
#[test]
fn a_bad_byte_anywhere_in_a_wal_segment_costs_only_its_frame() {
    let dir = tempfile::tempdir().unwrap();
    let seg = four_appends(dir.path());
    let good = std::fs::read(&seg).unwrap();
    let starts = frame_starts(&good);
    assert_eq!(starts.len() - 1, 13);
    let intact = wal::replay(&seg).unwrap();
    assert_eq!(intact.frames.len(), 8);
    // Every header byte of every frame, the first and last bytes of each payload, and every
    // 29th payload byte (a payload byte is only ever checked by the checksum; decoding a batch
    // costs ~9 ms unoptimised, so all 11,700 bytes twice would take minutes).
    let mut offsets: Vec<usize> = Vec::new();
    for w in starts.windows(2) {
        let (start, end) = (w[0], w[1]);
        offsets.extend(start..(start + 18).min(end));
        offsets.extend((start + 18..end.saturating_sub(4)).step_by(29));
        offsets.extend(end.saturating_sub(4).max(start + 14)..end);
    }
    offsets.sort_unstable();
    offsets.dedup();
    let mut checked = 0;
    for &offset in &offsets {
        let frame = starts.iter().rposition(|s| *s <= offset).unwrap();
        for flip in [0x01u8, 0x80] {
            let mut bad = good.clone();
            bad[offset] ^= flip;
            std::fs::write(&seg, &bad).unwrap();
            let r = wal::replay(&seg).unwrap();
            let at = format!("byte {offset} ({:?}) ^ {flip:#x}", role(frame));
            checked += 1;
            if is_unused_byte(&starts, offset) {
                assert_eq!(r.frames.len(), 8, "{at}");
                assert!(r.damaged.is_empty() && r.torn.is_none(), "{at}");
                continue;
            }
            let (frames, _, _) = cost(frame);
            assert_eq!(r.frames.len(), frames, "{at}: {:?} {:?}", r.damaged, r.torn);
            if role(frame) == Role::Commit(3) {
                assert!(r.torn.is_some(), "{at}");
                assert!(r.damaged.len() <= 1, "{at}");
            } else {
                assert!(r.torn.is_none(), "{at}: {:?}", r.torn);
                assert_eq!(r.damaged.len(), 1, "{at}");
                assert_eq!(r.damaged[0].offset, starts[frame] as u64, "{at}");
                assert_eq!(r.valid_len, good.len() as u64, "{at}");
            }
        }
    }
    assert_eq!(checked, 2 * offsets.len());
    eprintln!("{checked} damaged replays of a {}-byte segment", good.len());
}

/// A length field damaged to claim gigabytes is read as damage, not allocated.
#[test]
fn a_huge_frame_length_is_damage_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let seg = four_appends(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let b0 = frame_starts(&bytes)[1];
    bytes[b0 + 6..b0 + 10].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(&seg, &bytes).unwrap();
    let r = wal::replay(&seg).unwrap();
    assert_eq!(r.frames.len(), 7);
    assert!(
        r.damaged[0].reason.contains("short frame payload"),
        "{:?}",
        r.damaged
    );
}

/// The store over a damaged segment: it opens, recovers the frames around the damage, keeps a
/// copy of the segment in quarantine, and applies no mark after the damage (so a source that
/// can be read again re-reads the lost rows instead of skipping them).
#[test]
fn the_store_opens_over_wal_damage_and_holds_back_later_marks() {
    let dir = tempfile::tempdir().unwrap();
    let seg = four_appends(dir.path());
    let good = std::fs::read(&seg).unwrap();
    let starts = frame_starts(&good);
    // The second append's batch, then a sample of offsets in every frame.
    let mut offsets: Vec<usize> = vec![starts[4] + 20];
    offsets.extend((0..good.len()).step_by(97));
    offsets.extend(starts[..13].iter().flat_map(|s| [*s, s + 5, s + 9, s + 13]));
    eprintln!("{} store opens over a damaged segment", offsets.len());
    for offset in offsets {
        let frame = starts.iter().rposition(|s| *s <= offset).unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("wal")).unwrap();
        let mut bad = good.clone();
        bad[offset] ^= 0x10;
        std::fs::write(root.path().join("wal").join(seg.file_name().unwrap()), &bad).unwrap();
        let at = format!("byte {offset} ({:?})", role(frame));
        let (store, rec) = Store::open(root.path(), opts(1 << 20)).unwrap();
        if is_unused_byte(&starts, offset) {
            assert!(rec.damage.is_empty() && rec.rows == 40 && store.committed("k") == 40);
            continue;
        }
        let (_, rows, committed) = cost(frame);
        assert_eq!(rec.rows, rows, "{at}");
        assert_eq!(store.committed("k"), committed, "{at}");
        if role(frame) != Role::Commit(3) {
            assert_eq!(rec.quarantined.len(), 1, "{at}");
            let q = &rec.quarantined[0];
            assert_eq!(q.action, "copied");
            assert!(root.path().join(&q.kept_as).is_file(), "{at}");
            assert!(rec.damage.iter().any(|d| d.contains("skipped")), "{at}");
            assert_eq!(quarantine::list(root.path()).unwrap(), rec.quarantined);
        } else {
            assert!(rec.torn.len() == 1, "{at}");
        }
        drop(store);
        assert_eq!(census(root.path()).0, rows as i64, "{at}");
    }
}

/// The ledger cut in half: its backup is read instead; both cut: the store still opens, keeps
/// every stored row, and says that file sources will be read again.
#[test]
fn a_ledger_cut_in_half_is_replaced_by_its_backup() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        store
            .append(
                vec![(TableName::Metrics, rows(0, 100, 2))],
                Some(mark("f", 100)),
            )
            .unwrap();
        store.flush().unwrap();
        store
            .append(
                vec![(TableName::Metrics, rows(100, 50, 1))],
                Some(mark("f", 150)),
            )
            .unwrap();
        store.flush().unwrap();
    }
    let ledger = dir.path().join("sources.json");
    let cut = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
    };
    cut(&ledger);
    {
        let (store, rec) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        assert_eq!(store.committed("f"), 150);
        assert_eq!(rec.quarantined.len(), 1, "{rec:?}");
        assert_eq!(rec.quarantined[0].original, "sources.json");
        assert!(rec.damage[0].contains("backup"), "{:?}", rec.damage);
    }
    assert_eq!(census(dir.path()).0, 150);
    // The open saved nothing new, so write a fresh pair the way a flush does, then cut both.
    {
        let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        store
            .append(
                vec![(TableName::Metrics, rows(150, 10, 1))],
                Some(mark("f", 160)),
            )
            .unwrap();
        store.flush().unwrap();
    }
    cut(&ledger);
    cut(&dir.path().join("sources.backup.json"));
    let (store, rec) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(store.committed("f"), 0);
    assert_eq!(rec.quarantined.len(), 2);
    assert!(rec.damage[0].contains("stored twice"), "{:?}", rec.damage);
    drop(store);
    assert_eq!(census(dir.path()).0, 160, "no stored row is removed");
    // Every quarantined item is in the index, with the files beside it.
    let all = quarantine::list(dir.path()).unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|q| dir.path().join(&q.kept_as).is_file()));
}

/// Parquet segments with a truncated file or a damaged footer are moved to quarantine; queries
/// answer from the intact ones.
#[test]
fn unreadable_parquet_segments_are_quarantined_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        for i in 0..3 {
            store
                .append(vec![(TableName::Metrics, rows(i * 100, 100, 1))], None)
                .unwrap();
            store.flush().unwrap();
        }
    }
    let files = {
        let (store, _) = Store::open(dir.path(), opts(1 << 20)).unwrap();
        store.segments().list(TableName::Metrics).unwrap()
    };
    assert_eq!(files.len(), 3);
    let path = |i: usize| dir.path().join(files[i].relative_path());
    // A file cut in half (a torn copy), and one with a byte of its footer metadata flipped.
    let bytes = std::fs::read(path(0)).unwrap();
    std::fs::write(path(0), &bytes[..bytes.len() / 2]).unwrap();
    let mut bytes = std::fs::read(path(1)).unwrap();
    let n = bytes.len();
    let meta_len = u32::from_le_bytes(bytes[n - 8..n - 4].try_into().unwrap()) as usize;
    bytes[n - 8 - meta_len + 1] ^= 0xff;
    std::fs::write(path(1), &bytes).unwrap();
    let (store, rec) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(rec.quarantined.len(), 2, "{rec:?}");
    assert!(
        rec.quarantined
            .iter()
            .all(|q| q.action == "moved" && q.reason.contains("unreadable Parquet"))
    );
    assert_eq!(store.segments().list(TableName::Metrics).unwrap().len(), 1);
    drop(store);
    assert_eq!(census(dir.path()).0, 100);
    // Reopening finds nothing more to do.
    let (_, rec) = Store::open(dir.path(), opts(1 << 20)).unwrap();
    assert!(rec.quarantined.is_empty() && rec.damage.is_empty());
}

/// The disk fills: appends and flushes fail (nothing unacknowledged is kept), the store goes on
/// once space returns, and after a crash exactly the acknowledged rows are there.
#[test]
fn a_full_disk_refuses_appends_and_the_store_resumes_when_space_returns() {
    let Some(disk) = SmallDisk::mount("4m") else {
        return;
    };
    let root = disk.path().join("data");
    let opts = StoreOptions {
        sync: Sync::Always,
        flush_rows: 1 << 20,
        ..Default::default()
    };
    let mut acked = 0i64;
    let mut refused = 0;
    {
        let (mut store, _) = Store::open(&root, opts.clone()).unwrap();
        store
            .append(vec![(TableName::Metrics, rows(0, 100, 1))], None)
            .unwrap();
        acked += 100;
        disk.fill(256 << 10);
        // Appends of growing size until one is refused (part written), then more refusals.
        let mut next = 100i64;
        for i in 0..400 {
            let n = 50 + i * 7;
            match store.append(vec![(TableName::Metrics, rows(next, n, 1))], None) {
                Ok(()) => acked += n,
                Err(e) => {
                    assert!(e.to_string().contains("No space"), "{e}");
                    refused += 1;
                    if refused == 5 {
                        break;
                    }
                }
            }
            next += n;
        }
        assert_eq!(refused, 5, "the disk never filled");
        // A flush needs space too: refused, and nothing is lost by trying.
        assert!(store.flush().is_err());
        disk.free();
        store
            .append(vec![(TableName::Metrics, rows(1_000_000, 10, 1))], None)
            .unwrap();
        acked += 10;
        // Crash: no flush.
    }
    let (_, rec) = Store::open(&root, opts).unwrap();
    assert!(rec.torn.is_empty() && rec.damage.is_empty(), "{rec:?}");
    assert_eq!(rec.rows as i64, acked);
    assert_eq!(census(&root).0, acked);
}

mod replay_properties {
    use proptest::prelude::*;

    use super::*;
    use arrow::array::Float64Array;
    use tunnelwatch_queries::wal::Frame;

    /// A segment of `sizes.len()` appends (batch `rows(first, n)` + mark at `first + n`).
    fn segment(root: &Path, sizes: &[i64]) -> (PathBuf, Vec<(i64, usize)>) {
        let (mut store, _) = Store::open(root, opts(1 << 20)).unwrap();
        let mut first = 0;
        let mut batches = Vec::new();
        for &n in sizes {
            store
                .append(
                    vec![(TableName::Metrics, rows(first, n, 1))],
                    Some(mark("k", (first + n) as u64)),
                )
                .unwrap();
            batches.push((first, n as usize));
            first += n;
        }
        (wal_segment(root), batches)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Whatever is done to a segment (bytes flipped, cut anywhere, garbage after it —
        /// including stray frame magic), replay returns, and what it returns is a subsequence
        /// of what was written: whole batches in their order, marks in their order, nothing
        /// invented, nothing twice.
        #[test]
        fn replay_of_a_damaged_segment_is_a_subsequence_of_what_was_written(
            sizes in proptest::collection::vec(1i64..30, 1..6),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..6),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            garbage in proptest::collection::vec(any::<u8>(), 0..64),
            magic_in_garbage in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (seg, written) = segment(dir.path(), &sizes);
            let mut bytes = std::fs::read(&seg).unwrap();
            for (at, x) in &flips {
                let i = at.index(bytes.len());
                bytes[i] ^= x;
            }
            if let Some(c) = cut {
                bytes.truncate(c.index(bytes.len() + 1));
            }
            if magic_in_garbage {
                bytes.extend_from_slice(b"TWAL");
            }
            bytes.extend_from_slice(&garbage);
            std::fs::write(&seg, &bytes).unwrap();
            let r = wal::replay(&seg).unwrap();
            let mut batches = written.iter();
            let mut last_mark = 0;
            for f in &r.frames {
                match f {
                    Frame::Batch(t, b) => {
                        prop_assert_eq!(*t, TableName::Metrics);
                        let sums = b.column(7).as_any().downcast_ref::<Float64Array>().unwrap();
                        let first = sums.value(0) as i64;
                        // The next batch replayed is one written after the previous one.
                        prop_assert!(
                            batches.any(|(f, n)| *f == first && *n == b.num_rows()),
                            "batch at {} ({} rows) out of order or invented", first, b.num_rows()
                        );
                    }
                    Frame::Mark(m) => {
                        prop_assert!(m.offset > last_mark, "mark {} after {}", m.offset, last_mark);
                        prop_assert!(written.iter().any(|(f, n)| (f + *n as i64) as u64 == m.offset));
                        last_mark = m.offset;
                    }
                }
            }
            // Nothing done to it: everything comes back.
            if flips.is_empty() && cut.is_none() {
                prop_assert_eq!(r.frames.len(), 2 * written.len());
            }
        }
    }
}
