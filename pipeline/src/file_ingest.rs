//! One-shot ingest of files and stdin (`tunnelwatch ingest PATH…`): read, parse, store.
//!
//! Two threads: the caller's reads and parses, building Arrow batches; a writer thread owns the
//! store (WAL append + fsync, Parquet flushes). Batches are cut at chunk boundaries, so each
//! carries a source mark "everything before offset N of this input is stored"; a second run
//! over the same input skips what the ledger says is stored (re-ingesting never duplicates).
//!
//! Invariants: every record of an input is either stored, skipped because an earlier run
//! stored it (counted in [`Tally::skipped`]), or stored in `rejects`; a mark never covers a
//! record that is not in the same or an earlier append.

use std::cell::RefCell;
use std::sync::mpsc::{SyncSender, sync_channel};

use arrow::array::RecordBatch;
use tunnelwatch_ingest::files::{self, Input};
use tunnelwatch_parsers::{Decoder, DecoderOptions, Parsed, Reject};
use tunnelwatch_queries::rows::table_of;
use tunnelwatch_queries::{RowBuilder, SourceMark, Store, TableName};

use crate::error::PipelineError;

/// Rows per WAL append (one fsync each).
const BATCH_ROWS: usize = 64 * 1024;

/// What the caller is told while a load runs (progress bars, printed rejects).
pub trait Observer {
    /// Bytes of all inputs read so far.
    fn position(&mut self, bytes: u64);
    /// A record that goes to `rejects`.
    fn reject(&mut self, reject: &Reject);
}

/// An observer that wants nothing.
pub struct Quiet;

impl Observer for Quiet {
    fn position(&mut self, _: u64) {}
    fn reject(&mut self, _: &Reject) {}
}

/// What a load stored.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Inputs read (a file named twice counts once).
    pub inputs: usize,
    /// Rows per table (indexed by `TableName as usize`).
    pub rows: [u64; TableName::ALL.len()],
    /// Records an earlier run had stored already.
    pub skipped: u64,
}

impl Tally {
    pub fn records(&self) -> u64 {
        self.rows.iter().sum()
    }
}

type Job = (Vec<(TableName, RecordBatch)>, Option<SourceMark>);

/// Loads `inputs` into `store` and flushes it; returns the store and what was stored.
/// A file named twice (directly and through its directory, say) is read once.
pub fn ingest_files(
    store: Store,
    mut inputs: Vec<Input>,
    options: &DecoderOptions,
    now_ms: i64,
    observer: &mut dyn Observer,
) -> Result<(Store, Tally), PipelineError> {
    let mut seen = std::collections::HashSet::new();
    inputs.retain(|i| match i {
        Input::File(p) => seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())),
        Input::Stdin => true,
    });
    // Each input's ledger key (read once: it fingerprints the file) and how far it is stored.
    let keys: Vec<Option<String>> = inputs
        .iter()
        .map(Input::source_key)
        .collect::<Result<_, files::InputError>>()?;
    let committed: Vec<u64> = keys
        .iter()
        .map(|k| k.as_deref().map_or(0, |k| store.committed(k)))
        .collect();

    let (tx, rx) = sync_channel::<Job>(2);
    let writer = std::thread::Builder::new()
        .name("store-writer".into())
        .spawn(move || -> Result<Store, PipelineError> {
            let mut store = store;
            for (batches, mark) in rx {
                store.append(batches, mark)?;
            }
            store.flush()?;
            Ok(store)
        })
        .map_err(|e| PipelineError::io("starting the store writer", e))?;

    let mut tally = Tally {
        inputs: inputs.len(),
        ..Tally::default()
    };
    let mut bytes_done = 0u64;
    let mut send_error = None;
    for ((input, key), &skip_below) in inputs.iter().zip(&keys).zip(&committed) {
        let one = OneInput {
            input,
            key,
            skip_below,
            options,
            now_ms,
            tx: &tx,
            bytes_before: bytes_done,
        };
        if let Err(e) = one.run(observer, &mut tally) {
            send_error = Some(e);
            break;
        }
        bytes_done += input.size().unwrap_or(0);
    }
    drop(tx);
    let store = writer
        .join()
        .map_err(|_| PipelineError::Panicked("store writer"))??;
    if let Some(e) = send_error {
        return Err(e);
    }
    Ok((store, tally))
}

struct OneInput<'a> {
    input: &'a Input,
    key: &'a Option<String>,
    skip_below: u64,
    options: &'a DecoderOptions,
    now_ms: i64,
    tx: &'a SyncSender<Job>,
    bytes_before: u64,
}

impl OneInput<'_> {
    fn run(&self, observer: &mut dyn Observer, tally: &mut Tally) -> Result<(), PipelineError> {
        let name = self.input.name();
        let mut decoder = Decoder::new(&name, self.options.clone());
        // The record sink, the chunk callback and the observer are used one at a time.
        let rows = RefCell::new(RowBuilder::default());
        let observer = RefCell::new(observer);
        let mut sink = |p: Parsed| match p {
            Parsed::Event(e) => {
                if e.position.offset < self.skip_below {
                    tally.skipped += 1;
                    return;
                }
                tally.rows[table_of(&e) as usize] += 1;
                rows.borrow_mut().push_event(&e);
            }
            Parsed::Reject(r) => {
                if r.position.offset < self.skip_below {
                    tally.skipped += 1;
                    return;
                }
                tally.rows[TableName::Rejects as usize] += 1;
                observer.borrow_mut().reject(&r);
                rows.borrow_mut().push_reject(&r, self.now_ms);
            }
        };
        // After each chunk every record before the decoder's offset has been handed over: a
        // batch cut there carries an exact mark.
        let mut after_chunk = |decoder: &Decoder, read: u64| -> std::io::Result<()> {
            observer.borrow_mut().position(self.bytes_before + read);
            let mut rows = rows.borrow_mut();
            if rows.len() >= BATCH_ROWS {
                self.send(rows.finish(), decoder)?;
            }
            Ok(())
        };
        let reader = self.input.open()?;
        files::decode_stream(&mut decoder, reader, &mut sink, &mut after_chunk).map_err(|e| {
            PipelineError::io(format!("{name}: read error at {}", decoder.position()), e)
        })?;
        let rest = rows.borrow_mut().finish();
        self.send(rest, &decoder)
            .map_err(|e| PipelineError::io(name, e))?;
        Ok(())
    }

    fn send(
        &self,
        batches: Vec<(TableName, RecordBatch)>,
        decoder: &Decoder,
    ) -> std::io::Result<()> {
        let mark = self.key.as_ref().map(|k| SourceMark {
            source_key: k.clone(),
            offset: decoder.position().offset,
            state: None,
        });
        self.tx.send((batches, mark)).map_err(|_| {
            std::io::Error::other("the store writer stopped (see the error that follows)")
        })
    }
}
