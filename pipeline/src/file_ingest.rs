//! One-shot ingest of files and stdin (`tunnelwatch ingest PATH…`): read, parse, store.
//!
//! Threads: the caller's reads the input and cuts it into pieces of [`PIECE_BYTES`] that end
//! after a newline; decode workers (one per core) parse pieces into Arrow batches side by side;
//! the caller takes the results back in input order and hands them to a writer thread that owns
//! the store (Parquet flushes). Each batch carries a source mark "everything before offset N of
//! this input is stored"; a second run over the same input skips what the ledger says is stored
//! (re-ingesting never duplicates). A file can be read again, so its rows skip the WAL
//! ([`Store::append_replayable`]): its mark moves only once the Parquet holding them is
//! durable, and a run that dies before that leaves the ledger where the next run must resume.
//! Standard input cannot be read again: its rows go through the WAL (append + fsync).
//!
//! A piece is decoded by a decoder that starts at the piece's line and offset, which is exactly
//! what one decoder reading the whole input would do there — unless a record spans the cut (a
//! pretty-printed JSON document, an octet-counted syslog frame with newlines inside, a line
//! longer than a piece). The decoder then leaves the record's bytes unconsumed, and the caller
//! decodes those bytes and the next piece again in order, discarding the worker's result for
//! that piece: positions, rows and rejects are those of a single sequential decode.
//!
//! Invariants: every record of an input is either stored, skipped because an earlier run
//! stored it (counted in [`Tally::skipped`]), or stored in `rejects`; a mark never covers a
//! record that is not in the same or an earlier append; results reach the store in input order.
//!
//! Limits: an input whose records mostly span cuts (pretty-printed JSON) is decoded twice, once
//! in vain; pieces in flight hold about `3 × workers × piece_bytes` of input in memory.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::mpsc::{SyncSender, channel, sync_channel};

use arrow::array::RecordBatch;
use tunnelwatch_ingest::files::{self, Input, InputBytes};
use tunnelwatch_parsers::{Decoder, DecoderOptions, Parsed, Position, Reject};
use tunnelwatch_queries::rows::table_of;
use tunnelwatch_queries::{RowBuilder, SourceMark, Store, TableName};

use crate::error::PipelineError;

/// Rows per store append of a sequential load (one WAL append and fsync each for stdin).
const BATCH_ROWS: usize = 64 * 1024;

/// Input bytes per piece a decode worker takes by default (about 30,000 AWS records; one store
/// append each).
pub const PIECE_BYTES: usize = 8 << 20;

/// How a load spreads its decoding.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    /// Decode threads; 1: the reading thread decodes alone, in [`BATCH_ROWS`] batches.
    pub workers: usize,
    /// Input bytes per piece (cut after the last newline in them).
    pub piece_bytes: usize,
}

impl Split {
    /// One decode thread per core, [`PIECE_BYTES`] pieces.
    pub fn per_core() -> Split {
        Split {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            piece_bytes: PIECE_BYTES,
        }
    }
}

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

/// Rows for the store writer, the mark that covers them, and whether their input can be read
/// again (a file) so that the rows may skip the WAL.
struct Job {
    batches: Vec<(TableName, RecordBatch)>,
    mark: Option<SourceMark>,
    replayable: bool,
}

/// Loads `inputs` into `store` and flushes it; returns the store and what was stored.
/// A file named twice (directly and through its directory, say) is read once. With `split`
/// of more than one worker, pieces of each input are parsed side by side.
pub fn ingest_files(
    store: Store,
    mut inputs: Vec<Input>,
    options: &DecoderOptions,
    now_ms: i64,
    split: Split,
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
            for job in rx {
                if job.replayable {
                    store.append_replayable(job.batches, job.mark)?;
                } else {
                    store.append(job.batches, job.mark)?;
                }
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
        let run = if split.workers > 1 {
            one.run_split(split, observer, &mut tally)
        } else {
            one.run(observer, &mut tally)
        };
        if let Err(e) = run {
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
                self.send(rows.finish(), decoder.position().offset)?;
            }
            Ok(())
        };
        let reader = self.input.open()?;
        files::decode_stream(&mut decoder, reader, &mut sink, &mut after_chunk).map_err(|e| {
            PipelineError::io(format!("{name}: read error at {}", decoder.position()), e)
        })?;
        let rest = rows.borrow_mut().finish();
        self.send(rest, decoder.position().offset)
            .map_err(|e| PipelineError::io(name, e))?;
        Ok(())
    }

    /// Like [`OneInput::run`], with the decoding spread over `split.workers` threads (see the
    /// module documentation).
    fn run_split(
        &self,
        split: Split,
        observer: &mut dyn Observer,
        tally: &mut Tally,
    ) -> Result<(), PipelineError> {
        let (workers, piece_bytes) = (split.workers, split.piece_bytes.max(1));
        let name = self.input.name();
        let read_error =
            |at: u64, e| PipelineError::io(format!("{name}: read error at byte {at}"), e);
        let mut input = InputBytes::new(self.input.open()?).map_err(|e| read_error(0, e))?;
        let (piece_tx, piece_rx) = sync_channel::<Piece>(workers);
        let piece_rx = Mutex::new(piece_rx);
        std::thread::scope(|scope| -> Result<(), PipelineError> {
            // Unbounded, so a worker never waits on the caller while the caller waits to hand
            // it a piece; what is in flight is bounded below instead.
            let (done_tx, done_rx) = channel::<Decoded>();
            for _ in 0..workers {
                let (piece_rx, done_tx, name) = (&piece_rx, done_tx.clone(), &name);
                scope.spawn(move || {
                    loop {
                        let next = piece_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok(piece) = next else { return };
                        let decoded = self.decode_piece(
                            name,
                            piece.line,
                            piece.offset,
                            &piece.bytes,
                            piece.last,
                        );
                        if done_tx
                            .send(Decoded {
                                piece,
                                out: decoded,
                            })
                            .is_err()
                        {
                            return;
                        }
                    }
                });
            }
            drop(done_tx);
            let mut order = InOrder {
                next: 0,
                waiting: BTreeMap::new(),
                carry: Vec::new(),
                carry_line: 1,
                carry_offset: 0,
            };
            let (mut seq, mut line, mut offset, mut in_flight) = (0u64, 1u64, 0u64, 0usize);
            let mut rest: Vec<u8> = Vec::new();
            let mut eof = false;
            while !eof {
                let mut bytes = std::mem::take(&mut rest);
                bytes.reserve(piece_bytes.saturating_sub(bytes.len()));
                while bytes.len() < piece_bytes {
                    let start = bytes.len();
                    bytes.resize(piece_bytes, 0);
                    let n = input
                        .read_some(&mut bytes[start..])
                        .map_err(|e| read_error(offset + start as u64, e))?;
                    bytes.truncate(start + n);
                    if n == 0 {
                        eof = true;
                        break;
                    }
                }
                let cut = if eof {
                    bytes.len()
                } else {
                    memchr::memrchr(b'\n', &bytes).map_or(bytes.len(), |nl| nl + 1)
                };
                rest = bytes.split_off(cut);
                let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64;
                let piece = Piece {
                    seq,
                    line,
                    offset,
                    last: eof,
                    raw_read: input.raw_bytes_read(),
                    bytes,
                };
                (seq, line, offset) = (seq + 1, line + lines, offset + cut as u64);
                if piece_tx.send(piece).is_err() {
                    break;
                }
                in_flight += 1;
                // Take back what is done; wait when too much is in flight.
                while let Some(d) = if in_flight > 2 * workers {
                    done_rx.recv().ok()
                } else {
                    done_rx.try_recv().ok()
                } {
                    in_flight -= 1;
                    self.accept(d, &mut order, &name, observer, tally)?;
                }
            }
            drop(piece_tx);
            for d in done_rx {
                self.accept(d, &mut order, &name, observer, tally)?;
            }
            Ok(())
        })
    }

    /// Decodes one piece that starts at `line` and `offset` of the input; `last`: nothing
    /// follows it.
    fn decode_piece(
        &self,
        name: &str,
        line: u64,
        offset: u64,
        bytes: &[u8],
        last: bool,
    ) -> PieceOut {
        let mut decoder = Decoder::new(name, self.options.clone()).starting_at(line, offset);
        let mut rows = RowBuilder::default();
        let mut out = PieceOut::default();
        let consumed = decoder.decode(bytes, last, &mut |p| match p {
            Parsed::Event(e) => {
                if e.position.offset < self.skip_below {
                    out.skipped += 1;
                    return;
                }
                out.rows[table_of(&e) as usize] += 1;
                rows.push_event(&e);
            }
            Parsed::Reject(r) => {
                if r.position.offset < self.skip_below {
                    out.skipped += 1;
                    return;
                }
                out.rows[TableName::Rejects as usize] += 1;
                rows.push_reject(&r, self.now_ms);
                out.rejects.push(r);
            }
        });
        out.consumed = consumed;
        out.end = decoder.position();
        out.batches = rows.finish();
        out
    }

    /// Takes a worker's result; stores the results that are next in input order, decoding a
    /// piece again where the previous one ended inside a record.
    fn accept(
        &self,
        decoded: Decoded,
        order: &mut InOrder,
        name: &str,
        observer: &mut dyn Observer,
        tally: &mut Tally,
    ) -> Result<(), PipelineError> {
        order.waiting.insert(decoded.piece.seq, decoded);
        while let Some(Decoded { piece, out }) = order.waiting.remove(&order.next) {
            order.next += 1;
            let (bytes, out) = if order.carry.is_empty() {
                (piece.bytes, out)
            } else {
                let mut bytes = std::mem::take(&mut order.carry);
                bytes.extend_from_slice(&piece.bytes);
                let out = self.decode_piece(
                    name,
                    order.carry_line,
                    order.carry_offset,
                    &bytes,
                    piece.last,
                );
                (bytes, out)
            };
            order.carry = bytes[out.consumed..].to_vec();
            (order.carry_line, order.carry_offset) = (out.end.line, out.end.offset);
            for (t, n) in out.rows.iter().enumerate() {
                tally.rows[t] += n;
            }
            tally.skipped += out.skipped;
            for r in &out.rejects {
                observer.reject(r);
            }
            self.send(out.batches, out.end.offset)
                .map_err(|e| PipelineError::io(name, e))?;
            observer.position(self.bytes_before + piece.raw_read);
        }
        Ok(())
    }

    fn send(&self, batches: Vec<(TableName, RecordBatch)>, offset: u64) -> std::io::Result<()> {
        let mark = self.key.as_ref().map(|k| SourceMark {
            source_key: k.clone(),
            offset,
            state: None,
        });
        let job = Job {
            batches,
            mark,
            replayable: matches!(self.input, Input::File(_)),
        };
        self.tx.send(job).map_err(|_| {
            std::io::Error::other("the store writer stopped (see the error that follows)")
        })
    }
}

/// A line-aligned piece of one input, for a decode worker.
struct Piece {
    /// Its place in the input (0, 1, …).
    seq: u64,
    /// Line and byte offset of its first byte.
    line: u64,
    offset: u64,
    bytes: Vec<u8>,
    /// The input ends with it.
    last: bool,
    /// Raw input bytes read when it was cut (progress).
    raw_read: u64,
}

/// What decoding a piece gave.
#[derive(Default)]
struct PieceOut {
    /// Bytes of the piece decoded; the rest starts a record that goes on in the next piece.
    consumed: usize,
    /// Where the decoder stopped.
    end: Position,
    batches: Vec<(TableName, RecordBatch)>,
    rows: [u64; TableName::ALL.len()],
    skipped: u64,
    rejects: Vec<Reject>,
}

struct Decoded {
    piece: Piece,
    out: PieceOut,
}

/// The caller's side of a split load: results waiting for their turn, and the bytes the last
/// stored piece left unconsumed (with their line and offset).
struct InOrder {
    next: u64,
    waiting: BTreeMap<u64, Decoded>,
    carry: Vec<u8>,
    carry_line: u64,
    carry_offset: u64,
}
