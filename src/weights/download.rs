//! Downloads a catalogue model into the store: streamed to `<file>.part`, resumed with an HTTP
//! `Range` request when a `.part` is there (restarting when the server ignores the range),
//! validated as the catalogue's GPEN configuration, hashed, and only then renamed into place.

use super::{ModelEntry, ModelError, ModelStore, Record, sha256_file, validate_file};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How progress is shown.
pub enum Progress {
    /// Nothing (tests, or a caller that polls the `.part` size).
    Hidden,
    /// An indicatif bar on stderr.
    Bar,
    /// Called after every chunk with (bytes so far, total when known); a GUI sends this to its thread.
    Callback(Box<dyn Fn(u64, Option<u64>) + Send + Sync>),
}

/// Settings of one download.
pub struct DownloadOptions {
    pub progress: Progress,
    /// Set from another thread to stop between chunks; the `.part` stays for a later resume.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Limit for connecting and for each read from the server.
    pub timeout: Duration,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions { progress: Progress::Bar, cancel: None, timeout: Duration::from_secs(30) }
    }
}

/// What the server sent back for the range we asked for.
enum Start {
    /// Append to the `.part` from this offset.
    Resume(u64),
    /// Write from byte 0 (no `.part`, or the server ignored the range).
    Fresh,
}

const CHUNK: usize = 256 * 1024;
/// Restarts after a server answered a range badly; a bound, so a confused server cannot loop us.
const MAX_ATTEMPTS: usize = 3;

/// Downloads `entry` into `store`, resuming a `.part` left by an interrupted run. Returns the
/// installed path.
pub fn download(entry: &ModelEntry, store: &ModelStore, options: &DownloadOptions) -> Result<PathBuf, ModelError> {
    let Some(url) = entry.url.as_deref() else {
        return Err(ModelError::ManualOnly {
            name: entry.name.clone(),
            instruction: entry.manual.clone().unwrap_or_else(|| "No download source is known.".into()),
        });
    };
    store.ensure_dir()?;
    let dest = store.path_of(entry);
    let part = store.part_of(entry);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(options.timeout))
        .timeout_recv_response(Some(options.timeout))
        .timeout_per_read(Some(options.timeout))
        .http_status_as_error(false)
        .user_agent(concat!("gpen-studio/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();

    let mut attempt = 0;
    loop {
        attempt += 1;
        match fetch(&agent, url, &part, &dest, options)? {
            Fetched::Complete => break,
            Fetched::Restart if attempt < MAX_ATTEMPTS => {
                let _ = std::fs::remove_file(&part);
            }
            Fetched::Restart => {
                return Err(ModelError::Other(format!("{url} keeps answering byte ranges inconsistently; try again later")));
            }
        }
    }

    // Wrong content is removed; nothing under the final name changes.
    let validated = match validate_file(&part, Some(&entry.name), Some(entry.kind)) {
        Ok(v) => v,
        Err(ModelError::WebPage { .. }) => {
            let _ = std::fs::remove_file(&part);
            return Err(ModelError::WebPage { source_name: url.into() });
        }
        Err(e @ (ModelError::Invalid { .. } | ModelError::InvalidAddon { .. } | ModelError::WrongConfig { .. })) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let (sha256, bytes) = sha256_file(&part)?;
    store.record(&entry.file, Record::new(sha256, bytes, &validated))?;
    std::fs::rename(&part, &dest).map_err(ModelError::io(&dest))?;
    Ok(dest)
}

enum Fetched {
    Complete,
    Restart,
}

/// One HTTP request: appends to or rewrites the `.part`.
fn fetch(agent: &ureq::Agent, url: &str, part: &Path, dest: &Path, options: &DownloadOptions) -> Result<Fetched, ModelError> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut request = agent.get(url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let response = request.call().map_err(|e| network_error(url, e, dest))?;
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_type = header("content-type").unwrap_or_default().to_ascii_lowercase();
    let length = header("content-length").and_then(|v| v.trim().parse::<u64>().ok());

    let start = match status {
        206 if have > 0 => match header("content-range").as_deref().and_then(parse_content_range) {
            Some((first, _)) if first == have => Start::Resume(have),
            _ => return Ok(Fetched::Restart),
        },
        // A range starting at the end of a complete `.part`: it only needs validating.
        416 if have > 0 => return Ok(Fetched::Complete),
        200..=299 => Start::Fresh,
        _ => return Err(ModelError::Http { url: url.into(), status }),
    };
    if content_type.starts_with("text/html") || content_type.starts_with("application/xhtml") {
        // A page instead of the file: the bytes already in a `.part` are not the page, keep them.
        if have == 0 {
            let _ = std::fs::remove_file(part);
        }
        return Err(ModelError::WebPage { source_name: url.into() });
    }

    let (mut file, mut got) = match start {
        Start::Resume(offset) => (OpenOptions::new().append(true).open(part).map_err(ModelError::io(part))?, offset),
        Start::Fresh => (File::create(part).map_err(ModelError::io(part))?, 0),
    };
    let total = length.map(|n| n + got);
    let bar = match &options.progress {
        Progress::Bar => {
            let bar = indicatif::ProgressBar::new(total.unwrap_or(0)).with_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_message(dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            bar.set_position(got);
            Some(bar)
        }
        _ => None,
    };
    let report = |got: u64| match &options.progress {
        Progress::Callback(f) => f(got, total),
        _ => {
            if let Some(bar) = &bar {
                bar.set_position(got);
            }
        }
    };
    report(got);

    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; CHUNK];
    let interrupted =
        |got: u64, reason: String| ModelError::Interrupted { url: url.into(), got, expected: total, reason, part: part.into() };
    loop {
        if options.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
            let _ = file.sync_all();
            if let Some(bar) = &bar {
                bar.abandon();
            }
            return Err(ModelError::Cancelled { got, part: part.into() });
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = file.sync_all();
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                return Err(interrupted(got, first_line(&e.to_string())));
            }
        };
        file.write_all(&buf[..n]).map_err(ModelError::io(part))?;
        got += n as u64;
        report(got);
    }
    file.sync_all().map_err(ModelError::io(part))?;
    if let Some(bar) = &bar {
        bar.finish();
    }
    match total {
        Some(t) if got < t => Err(interrupted(got, "the connection closed early".into())),
        _ => Ok(Fetched::Complete),
    }
}

/// `bytes START-END/TOTAL` -> (START, TOTAL when given).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (first, _) = range.split_once('-')?;
    Some((first.trim().parse().ok()?, total.trim().parse().ok()))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

/// Failures before any response: no route, refused, DNS, TLS, timeouts -> the no-network message
/// with the manual alternative. A `.part` from an earlier run stays for the next attempt.
fn network_error(url: &str, err: ureq::Error, dest: &Path) -> ModelError {
    let reason = match &err {
        ureq::Error::HostNotFound => "the host name does not resolve (no network?)".to_string(),
        ureq::Error::ConnectionFailed => "the connection failed".to_string(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        other => first_line(&other.to_string()),
    };
    ModelError::NoNetwork { url: url.into(), reason, dest: dest.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(parse_content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
