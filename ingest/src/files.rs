//! One-shot reading of files and stdin: expands the paths a user gives (files, glob patterns,
//! directories recursively, `-` for stdin), names each input for the store's ledger, inflates
//! gzip, and feeds a `Decoder` in chunks that end on record boundaries.
//!
//! A directory contributes its log files: hidden files and the simulator's ground truth
//! (`truth.json` of `tunnelwatch simulate`, see [`crate::simulator::truth::is_truth_file`]) are
//! not logs and are passed over; a file named explicitly or matched by a pattern is always read.
//!
//! Limits: inputs are read once from start to end (following a growing file is the file tail
//! source's job). A source key is the canonical path plus a fingerprint of the first 4 KiB, so
//! the same file (or the same file grown) maps to the same key, and a rewritten one does not.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;
use tunnelwatch_parsers::{Decoder, Parsed};

use crate::simulator::truth::is_truth_file;

/// Bytes read per `decode` call.
pub const CHUNK: usize = 1 << 20;
const FINGERPRINT_BYTES: usize = 4096;

#[derive(Debug, Error)]
pub enum InputError {
    #[error("{0}: no such file or directory")]
    Missing(String),
    #[error("{0}: bad glob pattern: {1}")]
    BadPattern(String, String),
    #[error("{0}: the pattern matches no file")]
    NoMatch(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    /// The name records carry as their `source`.
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "stdin".to_owned(),
            Input::File(p) => p.display().to_string(),
        }
    }

    pub fn size(&self) -> Option<u64> {
        match self {
            Input::Stdin => None,
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
        }
    }

    /// The ledger key: canonical path + fingerprint of the first 4 KiB. `None` for stdin, which
    /// cannot be recognised when read again.
    pub fn source_key(&self) -> Result<Option<String>, InputError> {
        let Input::File(path) = self else {
            return Ok(None);
        };
        let io_err = |source| InputError::Io {
            path: path.display().to_string(),
            source,
        };
        let canonical = path.canonicalize().map_err(io_err)?;
        let mut head = Vec::with_capacity(FINGERPRINT_BYTES);
        File::open(path)
            .map_err(io_err)?
            .take(FINGERPRINT_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(io_err)?;
        Ok(Some(format!(
            "{}#{:08x}",
            canonical.display(),
            crc32fast::hash(&head)
        )))
    }

    pub fn open(&self) -> Result<Box<dyn Read>, InputError> {
        match self {
            Input::Stdin => Ok(Box::new(io::stdin().lock())),
            Input::File(p) => {
                File::open(p)
                    .map(|f| Box::new(f) as Box<dyn Read>)
                    .map_err(|source| InputError::Io {
                        path: p.display().to_string(),
                        source,
                    })
            }
        }
    }
}

/// Expands command-line paths: `-` is stdin, a directory contributes every file below it
/// (sorted; hidden files and the simulator's `truth.json` skipped), a pattern with `*?[` is a
/// glob. Every argument must match something.
pub fn expand(args: &[String]) -> Result<Vec<Input>, InputError> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            out.push(Input::Stdin);
            continue;
        }
        let path = Path::new(arg);
        if path.exists() {
            push_path(path, &mut out)?;
            continue;
        }
        if arg.contains(['*', '?', '[']) {
            let paths =
                glob::glob(arg).map_err(|e| InputError::BadPattern(arg.clone(), e.to_string()))?;
            let before = out.len();
            for p in paths {
                let p = p.map_err(|e| InputError::Io {
                    path: arg.clone(),
                    source: e.into(),
                })?;
                push_path(&p, &mut out)?;
            }
            if out.len() == before {
                return Err(InputError::NoMatch(arg.clone()));
            }
            continue;
        }
        return Err(InputError::Missing(arg.clone()));
    }
    Ok(out)
}

fn push_path(path: &Path, out: &mut Vec<Input>) -> Result<(), InputError> {
    if !path.is_dir() {
        out.push(Input::File(path.to_owned()));
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|source| InputError::Io {
            path: path.display().to_string(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                && !is_truth_file(p)
        })
        .collect();
    entries.sort();
    for e in entries {
        push_path(&e, out)?;
    }
    Ok(())
}

/// An input's bytes as decoders want them: inflated when the input is gzip, with the count of
/// raw input bytes read so far (for progress).
pub struct InputBytes<'a> {
    reader: Box<dyn Read + 'a>,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<'a> InputBytes<'a> {
    pub fn new(reader: Box<dyn Read + 'a>) -> io::Result<InputBytes<'a>> {
        let counter = CountingReader {
            inner: reader,
            count: std::rc::Rc::new(std::cell::Cell::new(0)),
        };
        let count = counter.count.clone();
        let mut reader = BufReader::with_capacity(CHUNK, counter);
        let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read + 'a> = if gzip {
            Box::new(flate2::read::MultiGzDecoder::new(reader))
        } else {
            Box::new(reader)
        };
        Ok(InputBytes { reader, count })
    }

    /// Reads into `buf` (retrying interruptions); 0 at the end of the input.
    pub fn read_some(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_some(&mut self.reader, buf)
    }

    /// Raw (compressed, for gzip) bytes of the input read so far.
    pub fn raw_bytes_read(&self) -> u64 {
        self.count.get()
    }
}

/// Feeds `reader` to `decoder` in chunks, inflating gzip, and calls `after_chunk` after each
/// chunk with the number of raw bytes read so far: every record before
/// `decoder.position().offset` has then been handed to `sink`.
pub fn decode_stream(
    decoder: &mut Decoder,
    reader: Box<dyn Read + '_>,
    sink: &mut dyn FnMut(Parsed),
    after_chunk: &mut dyn FnMut(&Decoder, u64) -> io::Result<()>,
) -> io::Result<()> {
    let mut input = InputBytes::new(reader)?;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    loop {
        let start = buf.len();
        buf.resize(start + CHUNK, 0);
        let n = input.read_some(&mut buf[start..])?;
        buf.truncate(start + n);
        let eof = n == 0;
        let used = decoder.decode(&buf, eof, sink);
        buf.drain(..used);
        after_chunk(decoder, input.raw_bytes_read())?;
        if eof {
            return Ok(());
        }
    }
}

fn read_some(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

struct CountingReader<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let dir = tempfile_dir();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.log"), "x").unwrap();
        std::fs::write(dir.join("a.log"), "x").unwrap();
        std::fs::write(dir.join("sub/c.json"), "x").unwrap();
        std::fs::write(dir.join(".hidden"), "x").unwrap();
        // The simulator's ground truth is skipped in a directory; a log of the same name is not.
        std::fs::write(
            dir.join("truth.json"),
            "{\n  \"generator\": \"tunnelwatch simulate\",\n  \"seed\": 1\n}\n",
        )
        .unwrap();
        std::fs::write(dir.join("sub/truth.json"), "{\"details\":\"x\"}\n").unwrap();
        let d = dir.display().to_string();
        let got = expand(std::slice::from_ref(&d)).unwrap();
        let names: Vec<String> = got.iter().map(|i| i.name()).collect();
        assert_eq!(
            names,
            [
                format!("{d}/a.log"),
                format!("{d}/b.log"),
                format!("{d}/sub/c.json"),
                format!("{d}/sub/truth.json")
            ]
        );
        // Named explicitly, it is read like any file.
        let named = expand(&[format!("{d}/truth.json")]).unwrap();
        assert_eq!(named, [Input::File(dir.join("truth.json"))]);
        let got = expand(&[format!("{d}/*.log"), "-".into()]).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], Input::Stdin);
        assert!(matches!(
            expand(&[format!("{d}/*.nothing")]),
            Err(InputError::NoMatch(_))
        ));
        assert!(matches!(
            expand(&[format!("{d}/nope.log")]),
            Err(InputError::Missing(_))
        ));
        // Same content, same key; different content, different key.
        let a = Input::File(dir.join("a.log"))
            .source_key()
            .unwrap()
            .unwrap();
        let b = Input::File(dir.join("b.log"))
            .source_key()
            .unwrap()
            .unwrap();
        assert_ne!(a, b);
        assert!(a.ends_with(&format!("#{:08x}", crc32fast::hash(b"x"))));
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tw-files-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
