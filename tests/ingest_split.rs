//! `tunnelwatch ingest` parses pieces of one input on several threads: whatever the number of
//! threads and wherever the pieces are cut — inside pretty-printed JSON documents, inside
//! octet-counted syslog frames, inside lines longer than a piece, between a CR and its LF — the
//! stored rows, their line and byte positions and the rejects are those of a single-threaded
//! load, gzip'd or not, and a second run skips everything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const TABLES: [&str; 5] = [
    "tunnel_activity",
    "bgp_events",
    "traffic",
    "gateway_events",
    "rejects",
];

fn data_file(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

/// Every layout the decoder knows, over and over with changing ids, into a file named after
/// its tunnel (activity records carry no tunnel id).
fn mixed_input(dir: &Path) -> PathBuf {
    let ndjson = data_file("vpn-1234abcd-1.2.3.4.ndjson");
    let pretty = data_file("aws-doc-bgp-example.json");
    let text = data_file("text-layouts.log");
    let octets = data_file("syslog-octet.log");
    let traffic = data_file("bgp-and-traffic.ndjson");
    // A customer gateway's lines, file and syslog shapes (captured from real daemons).
    let charon = data_file("gateway/strongswan/ikev2-psk-mismatch.cgw.log");
    let charon_syslog = data_file("gateway/strongswan/ikev2-psk-mismatch.cgw.syslog");
    let frr = data_file("gateway/frr-bird/bgp-hold-timer-expired.frr.log");
    let path = dir.join("vpn-1234abcd-1.2.3.4.log");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..150 {
        let id = format!("(id={i})");
        f.write_all(ndjson.replace("(id=12)", &id).as_bytes())
            .unwrap();
        f.write_all(pretty.as_bytes()).unwrap();
        f.write_all(text.replace("(id=7)", &id).as_bytes()).unwrap();
        f.write_all(b"\n\n   \n").unwrap();
        // CRLF line ends.
        f.write_all(ndjson.replace('\n', "\r\n").as_bytes())
            .unwrap();
        f.write_all(octets.as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
        f.write_all(traffic.as_bytes()).unwrap();
        f.write_all(charon.as_bytes()).unwrap();
        f.write_all(charon_syslog.as_bytes()).unwrap();
        f.write_all(frr.as_bytes()).unwrap();
        writeln!(f, "not a record {i} {{\"half\": ").unwrap();
    }
    // The last record has no newline.
    f.write_all(ndjson.trim_end().as_bytes()).unwrap();
    f.flush().unwrap();
    path
}

fn ingest(data: &Path, input: &Path, threads: usize, piece_bytes: usize) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
        .args(["ingest", "--no-metrics", "--sync", "never", "--data"])
        .arg(data)
        .args(["--threads", &threads.to_string()])
        .args(["--piece-bytes", &piece_bytes.to_string()])
        .arg(input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each table's rows in input order, without what differs between runs by design (the path
/// of the input, the wall-clock time of a reject).
fn dump(data: &Path) -> Vec<String> {
    TABLES
        .iter()
        .map(|table| {
            let exclude = if *table == "rejects" {
                "(source, ts)"
            } else {
                "(source)"
            };
            let sql = format!(
                "SELECT * EXCLUDE {exclude} FROM {table} ORDER BY source_offset, source_index"
            );
            let out = Command::new(env!("CARGO_BIN_EXE_tunnelwatch"))
                .args(["query", "--output", "csv", "--data"])
                .arg(data)
                .arg(&sql)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{sql}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
        .collect()
}

#[test]
fn split_parsing_stores_what_one_thread_stores() {
    let dir = tempfile::tempdir().unwrap();
    let input = mixed_input(dir.path());
    let one = dir.path().join("one");
    ingest(&one, &input, 1, 1 << 20);
    let want = dump(&one);
    for (table, rows) in TABLES.iter().zip(&want) {
        assert!(rows.lines().count() > 150, "{table}: too few rows:\n{rows}");
    }
    let rejects = &want[TABLES.iter().position(|t| *t == "rejects").unwrap()];
    assert!(
        rejects.contains("nothing recognisable"),
        "no rejects: {rejects}"
    );

    // gzip'd: positions are in the inflated bytes.
    let gz = dir.path().join("gz").join("vpn-1234abcd-1.2.3.4.log.gz");
    std::fs::create_dir_all(gz.parent().unwrap()).unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&std::fs::read(&input).unwrap()).unwrap();
    enc.finish().unwrap();
    let gz_one = dir.path().join("gz-one");
    ingest(&gz_one, &gz, 1, 1 << 20);
    let gz_want = dump(&gz_one);

    for (k, (threads, piece, path)) in [
        (2, 211, &input),
        (3, 4096, &input),
        (2, 65_536, &input),
        (2, 1000, &gz),
    ]
    .into_iter()
    .enumerate()
    {
        let data = dir.path().join(format!("split{k}"));
        let summary = ingest(&data, path, threads, piece);
        let got = dump(&data);
        let want = if path == &gz { &gz_want } else { &want };
        for ((table, want), got) in TABLES.iter().zip(want).zip(&got) {
            assert!(
                want == got,
                "{table} differs with {threads} threads, pieces of {piece} bytes ({summary})"
            );
        }
        // The marks are exact: a second run stores nothing new.
        let again = ingest(&data, path, threads, piece);
        assert_eq!(dump(&data), got, "{again}");
        assert!(again.contains("skipped"), "{again}");
    }
}
