//! A stand-in for the binary's store pipeline in source tests: decodes every delivery with one
//! `Decoder` per stream (as the real pipeline does), keeps the events and rejects as JSON, applies
//! checkpoints (last write wins, offset lowered by the bytes a decoder still holds) and completes
//! receipts at once (acks answered `Ok`). `hold()` stops completing receipts so the budget fills,
//! as when the store falls behind.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tunnelwatch_ingest::pipeline::{
    self, Checkpoint, Checkpoints, Input, Output, Receipt, Shutdown, ShutdownTrigger,
    SourceContext, SourceStats,
};
use tunnelwatch_parsers::{Decoder, Parsed};

#[derive(Default)]
pub struct Collected {
    pub events: Vec<serde_json::Value>,
    pub rejects: Vec<serde_json::Value>,
    pub checkpoints: BTreeMap<String, Checkpoint>,
    pub deliveries: usize,
    pub ended_streams: usize,
    /// Receipts not completed while held.
    held: Vec<Receipt>,
    holding: bool,
}

#[derive(Clone)]
pub struct Collector {
    pub out: Output,
    pub state: Arc<Mutex<Collected>>,
}

impl Collector {
    /// Starts the collector task on the current tokio runtime.
    pub fn start(budget_bytes: usize) -> Collector {
        let (out, input) = pipeline::channel(budget_bytes);
        let state = Arc::new(Mutex::new(Collected::default()));
        tokio::spawn(run(input, state.clone()));
        Collector { out, state }
    }

    /// A context for source `name`, resuming from the checkpoints collected so far.
    pub fn context(&self, name: &str, kind: &'static str) -> (SourceContext, ShutdownTrigger) {
        let (trigger, shutdown): (ShutdownTrigger, Shutdown) = pipeline::shutdown();
        let stats = Arc::new(SourceStats::new(name, kind));
        let checkpoints = Checkpoints(self.state.lock().unwrap().checkpoints.clone());
        (
            SourceContext {
                name: name.to_owned(),
                out: self.out.for_source(stats.clone()),
                shutdown,
                stats,
                checkpoints: Arc::new(checkpoints),
            },
            trigger,
        )
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        self.state.lock().unwrap().events.clone()
    }

    pub fn rejects(&self) -> Vec<serde_json::Value> {
        self.state.lock().unwrap().rejects.clone()
    }

    pub fn checkpoints(&self) -> BTreeMap<String, Checkpoint> {
        self.state.lock().unwrap().checkpoints.clone()
    }

    /// Stops completing receipts (the budget fills up) until `release`.
    pub fn hold(&self) {
        self.state.lock().unwrap().holding = true;
    }

    pub fn release(&self) {
        let held = {
            let mut s = self.state.lock().unwrap();
            s.holding = false;
            std::mem::take(&mut s.held)
        };
        for r in held {
            r.complete(Ok(()));
        }
    }

    /// Polls until `cond` holds or `timeout` passes; returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, cond: impl Fn(&Collected) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if cond(&self.state.lock().unwrap()) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn run(mut input: Input, state: Arc<Mutex<Collected>>) {
    let mut streams: HashMap<String, (Decoder, Vec<u8>)> = HashMap::new();
    while let Some(mut d) = input.recv().await {
        let receipt = d.take_receipt();
        let (decoder, pending) = streams.entry(d.stream.id.clone()).or_insert_with(|| {
            (
                Decoder::new(&d.stream.source, d.stream.options.clone()),
                Vec::new(),
            )
        });
        pending.extend_from_slice(&d.bytes);
        let mut parsed = Vec::new();
        let consumed = decoder.decode(pending, d.end, &mut |p| match p {
            Parsed::Event(e) => parsed.push(Ok(serde_json::to_value(&e).unwrap())),
            Parsed::Reject(r) => parsed.push(Err(serde_json::to_value(&r).unwrap())),
        });
        pending.drain(..consumed);
        let held = pending.len() as u64;
        let mut s = state.lock().unwrap();
        s.deliveries += 1;
        for p in parsed {
            match p {
                Ok(e) => s.events.push(e),
                Err(r) => s.rejects.push(r),
            }
        }
        for mut c in std::mem::take(&mut d.checkpoints) {
            c.offset = c.offset.saturating_sub(held);
            s.checkpoints.insert(c.key.clone(), c);
        }
        if d.end {
            streams.remove(&d.stream.id);
            s.ended_streams += 1;
        }
        if s.holding {
            s.held.push(receipt);
        } else {
            drop(s);
            receipt.complete(Ok(()));
        }
    }
}
