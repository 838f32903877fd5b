//! A loopback HTTP server for download tests: serves one body, resumes `Range` requests, and
//! misbehaves on demand (drops half-way, ignores ranges, sends web pages, trickles slowly).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PAGE: &[u8] = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>\n";

/// What the server does with one connection.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// 200, or 206 with `Content-Range` for a `Range: bytes=N-` request.
    Serve,
    /// As `Serve`, in pieces of `chunk` bytes with `pause` after each (a slow connection).
    Slow { chunk: usize, pause: Duration },
    /// Announces the whole length, sends this many bytes, closes.
    DropAfter(usize),
    /// 200 with the whole file whatever the request says.
    IgnoreRange,
    /// Sends the body with this content type (for web pages).
    Typed(&'static str),
}

pub struct Server {
    pub url: String,
    /// Request heads in arrival order, lower-cased.
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// Serves `body` on a loopback port; connection i gets `behaviours[i]` (the last one repeats).
/// The thread stops after 60 s or after 16 connections.
pub fn serve(body: Vec<u8>, behaviours: Vec<Behaviour>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/robin/models/GPEN-Test-64.pth", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while Instant::now() < deadline && served < 16 {
            match listener.accept() {
                Ok((stream, _)) => {
                    let behaviour = behaviours[served.min(behaviours.len() - 1)];
                    served += 1;
                    let _ = handle(stream, &body, behaviour, &seen);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => break,
            }
        }
    });
    Server { url, requests }
}

fn handle(mut stream: TcpStream, body: &[u8], behaviour: Behaviour, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if stream.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    seen.lock().unwrap().push(head.clone());
    let range = head
        .lines()
        .find_map(|l| l.strip_prefix("range:"))
        .and_then(|v| v.trim().strip_prefix("bytes=")?.strip_suffix('-')?.parse::<usize>().ok());
    let len = body.len();
    let (status, extra, content, announced, content_type) = match (behaviour, range) {
        (Behaviour::Serve | Behaviour::Slow { .. }, Some(start)) if start < len => (
            "206 Partial Content",
            format!("Content-Range: bytes {start}-{}/{len}\r\n", len - 1),
            &body[start..],
            len - start,
            "application/octet-stream",
        ),
        (Behaviour::Serve | Behaviour::Slow { .. }, Some(_)) => {
            ("416 Range Not Satisfiable", format!("Content-Range: bytes */{len}\r\n"), &body[..0], 0, "text/plain")
        }
        (Behaviour::DropAfter(n), _) => ("200 OK", String::new(), &body[..n], len, "application/octet-stream"),
        (Behaviour::Typed(t), _) => ("200 OK", String::new(), body, len, t),
        _ => ("200 OK", String::new(), body, len, "application/octet-stream"),
    };
    let header =
        format!("HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {announced}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(header.as_bytes())?;
    match behaviour {
        Behaviour::Slow { chunk, pause } => {
            for piece in content.chunks(chunk.max(1)) {
                stream.write_all(piece)?;
                stream.flush()?;
                std::thread::sleep(pause);
            }
        }
        _ => stream.write_all(content)?,
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Both)
}
