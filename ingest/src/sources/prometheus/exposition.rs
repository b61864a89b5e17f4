//! The Prometheus text exposition format (version 0.0.4, what node_exporter, ipsec exporters
//! and every client library serve on `/metrics`) as far as a scrape for counters needs it:
//! sample lines `name{label="value",…} value [timestamp_ms]`, with `# HELP`/`# TYPE` and other
//! comments skipped; and series selectors, `name{label="value",…}`, that pick samples.
//!
//! Invariants: label values are unescaped (`\\`, `\"`, `\n`); a line that is not a sample is
//! an error naming its line number, and the other lines still count (a scrape is not thrown
//! away for one odd line). Values are `f64` (`NaN`, `+Inf`, `-Inf` included).
//!
//! Limits: OpenMetrics-only syntax (`# EOF`, exemplars after `#`) is accepted only as far as a
//! 0.0.4 reader would: exemplars are cut at ` # `; selectors match labels by equality only
//! (no `!=`, `=~`).

/// A sample's or a selector's labels, in their order.
pub type Labels = Vec<(String, String)>;

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch, when the exporter gave one.
    pub timestamp_ms: Option<i64>,
}

/// A line that is not a sample.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

fn is_name_char(c: u8) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// The metric or label name at the start of `s`, and the rest.
fn name(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if !b.first().copied().is_some_and(is_name_start) {
        return None;
    }
    let end = b.iter().position(|&c| !is_name_char(c)).unwrap_or(b.len());
    Some((&s[..end], &s[end..]))
}

/// `{a="x",b="y"}` at the start of `s` (after its `{`): the labels and the rest after `}`.
fn labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((out, rest));
        }
        let (label, rest) = name(s).ok_or("a label name was expected")?;
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("`=` expected after label {label}"))?;
        let rest = rest
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("a quoted value expected for label {label}"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {label}: unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {label}: unterminated value")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        out.push((label.to_owned(), value));
        s = rest[end + 1..].trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err(format!("`,` or `}}` expected after label {label}"));
        }
    }
}

fn value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Every sample of an exposition, and the lines that were not samples.
pub fn parse(text: &str) -> (Vec<Sample>, Vec<LineError>) {
    let (mut samples, mut errors) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // An OpenMetrics exemplar: ` # {…} value`.
        let line = line.split_once(" # ").map_or(line, |(l, _)| l.trim_end());
        match sample(line) {
            Ok(s) => samples.push(s),
            Err(message) => errors.push(LineError {
                line: i + 1,
                message,
            }),
        }
    }
    (samples, errors)
}

fn sample(line: &str) -> Result<Sample, String> {
    let (metric, rest) = name(line).ok_or("a metric name was expected")?;
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(r) => labels(r)?,
        None => (Vec::new(), rest),
    };
    let mut fields = rest.split_ascii_whitespace();
    let v = fields.next().ok_or("no value")?;
    let v = value(v).ok_or_else(|| format!("`{v}` is not a number"))?;
    let timestamp_ms = match fields.next() {
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| format!("`{t}` is not a timestamp"))?,
        ),
        None => None,
    };
    if fields.next().is_some() {
        return Err("text after the timestamp".into());
    }
    Ok(Sample {
        name: metric.to_owned(),
        labels,
        value: v,
        timestamp_ms,
    })
}

/// `name` or `name{label="value",…}`: the samples of that name whose labels include these.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub name: String,
    pub labels: Labels,
}

impl Selector {
    pub fn parse(s: &str) -> Result<Selector, String> {
        let s = s.trim();
        let (metric, rest) = name(s).ok_or_else(|| format!("`{s}`: a metric name was expected"))?;
        let (labels, rest) = match rest.trim_start().strip_prefix('{') {
            Some(r) => labels(r).map_err(|e| format!("`{s}`: {e}"))?,
            None => (Vec::new(), rest),
        };
        if !rest.trim().is_empty() {
            return Err(format!(
                "`{s}`: text after the selector (only name{{label=\"value\",…}} is supported)"
            ));
        }
        Ok(Selector {
            name: metric.to_owned(),
            labels,
        })
    }

    pub fn matches(&self, s: &Sample) -> bool {
        s.name == self.name
            && self
                .labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
    }

    /// The sum of the matching samples (several CHILD SAs, several interfaces), and the latest
    /// timestamp among them; `None` when nothing matches.
    pub fn sum(&self, samples: &[Sample]) -> Option<(f64, Option<i64>)> {
        let mut found = None;
        for s in samples.iter().filter(|s| self.matches(s)) {
            let (sum, ts) = found.get_or_insert((0.0, None));
            *sum += s.value;
            *ts = (*ts).max(s.timestamp_ms);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_lines() {
        let text = "# HELP node_network_receive_bytes_total Network device statistic receive_bytes.\n\
            # TYPE node_network_receive_bytes_total counter\n\
            node_network_receive_bytes_total{device=\"lo\"} 1.7567227e+07\n\
            node_network_receive_bytes_total{device=\"vti1\",} 42 1796360400000\n\
            up 1\n\
            weird{path=\"C:\\\\x\",q=\"a\\\"b\",n=\"1\\n2\"} NaN\n\
            requests_total{code=\"200\"} 3 # {trace_id=\"ab\"} 1\n\
            \n\
            bad line here\n\
            broken{a=\"x} 1\n\
            nonum{a=\"x\"} abc\n";
        let (samples, errors) = parse(text);
        let got: Vec<(&str, usize, Option<i64>)> = samples
            .iter()
            .map(|s| (s.name.as_str(), s.labels.len(), s.timestamp_ms))
            .collect();
        assert_eq!(
            got,
            [
                ("node_network_receive_bytes_total", 1, None),
                (
                    "node_network_receive_bytes_total",
                    1,
                    Some(1_796_360_400_000)
                ),
                ("up", 0, None),
                ("weird", 3, None),
                ("requests_total", 1, None),
            ]
        );
        assert_eq!(samples[0].value, 17_567_227.0);
        assert_eq!(
            samples[3].labels,
            [
                ("path".to_owned(), "C:\\x".to_owned()),
                ("q".to_owned(), "a\"b".to_owned()),
                ("n".to_owned(), "1\n2".to_owned())
            ]
        );
        assert!(samples[3].value.is_nan());
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [9, 10, 11], "{errors:?}");
    }

    #[test]
    fn selectors_pick_and_sum() {
        let (samples, _) = parse(
            "ipsec_in_bytes{tunnel=\"Tunnel1\",child=\"1\"} 100\n\
             ipsec_in_bytes{tunnel=\"Tunnel1\",child=\"2\"} 20 5\n\
             ipsec_in_bytes{tunnel=\"Tunnel2\",child=\"3\"} 7 9\n",
        );
        let t1 = Selector::parse("ipsec_in_bytes{tunnel=\"Tunnel1\"}").unwrap();
        assert_eq!(t1.sum(&samples), Some((120.0, Some(5))));
        let all = Selector::parse("ipsec_in_bytes").unwrap();
        assert_eq!(all.sum(&samples), Some((127.0, Some(9))));
        let none = Selector::parse("ipsec_in_bytes{tunnel=\"Tunnel3\"}").unwrap();
        assert_eq!(none.sum(&samples), None);
        for bad in ["", "1abc", "x{a=b}", "x{a=\"b\"} extra", "x{a!=\"b\"}"] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }
}
