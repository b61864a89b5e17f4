//! `type = "stdin"`: the process's standard input as one stream, read until end of input (or
//! shutdown). No checkpoints: standard input cannot be recognised when read again.

use std::io::Read;
use std::sync::Arc;

use serde::Deserialize;
use tunnelwatch_parsers::DecoderOptions;

use crate::pipeline::{Delivery, SourceContext, Stream};
use crate::sources::{BuildError, BuildSource, Run, Source, SourceError};

const CHUNK: usize = 256 << 10;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Input format (`auto` by default); see `tunnelwatch parse --help`.
    #[serde(default)]
    pub format: Option<String>,
    /// Log stream name for records that do not name their tunnel.
    #[serde(default)]
    pub stream_name: Option<String>,
}

impl BuildSource for Config {
    fn build(&self, name: &str) -> Result<Box<dyn Source>, BuildError> {
        let format = crate::sources::parse_format(name, self.format.as_deref())?;
        Ok(Box::new(StdinSource {
            options: DecoderOptions {
                format,
                stream_name: self.stream_name.clone(),
                ..Default::default()
            },
        }))
    }
}

struct StdinSource {
    options: DecoderOptions,
}

impl Source for StdinSource {
    fn kind(&self) -> &'static str {
        "stdin"
    }

    fn run(self: Box<Self>, cx: SourceContext) -> Run {
        Box::pin(async move {
            let stream = Arc::new(Stream {
                id: format!("{}:stdin", cx.name),
                source: "stdin".to_owned(),
                options: self.options,
            });
            // Reading stdin blocks; a plain thread hands chunks to the async side.
            let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(2);
            std::thread::Builder::new()
                .name("stdin".into())
                .spawn(move || {
                    let mut stdin = std::io::stdin().lock();
                    loop {
                        let mut buf = vec![0; CHUNK];
                        match stdin.read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => {
                                buf.truncate(n);
                                if tx.blocking_send(Ok(buf)).is_err() {
                                    return;
                                }
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(e) => {
                                let _ = tx.blocking_send(Err(e));
                                return;
                            }
                        }
                    }
                })
                .map_err(|e| SourceError::Io {
                    what: "stdin: cannot start the reader thread".into(),
                    source: e,
                })?;
            loop {
                let chunk = tokio::select! {
                    c = rx.recv() => c,
                    _ = cx.shutdown.wait() => None,
                };
                match chunk {
                    Some(Ok(bytes)) => cx.out.send(Delivery::new(stream.clone(), bytes)).await?,
                    Some(Err(e)) => {
                        return Err(SourceError::Io {
                            what: "stdin".into(),
                            source: e,
                        });
                    }
                    None => break,
                }
            }
            cx.out.send(Delivery::new(stream, Vec::new()).end()).await?;
            Ok(())
        })
    }
}
