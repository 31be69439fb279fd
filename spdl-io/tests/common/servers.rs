//! Real servers for the remote-source tests: moto's S3 server (a Python
//! process started from `scripts/s3_server.py`) and a small HTTP/1.1 file
//! server with fault injection (503s, connections dropped mid-body, slow
//! responses).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use spdl_io::{Store, StoreConfig};

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// moto's S3 server with `fixtures/` uploaded to bucket `spdl-test` under
/// keys `fixtures/...`. Stops when dropped (its stdin closes).
pub struct S3Server {
    child: Child,
    _stdin: ChildStdin,
    pub port: u16,
}

pub const BUCKET: &str = "spdl-test";

impl S3Server {
    /// Starts the server with the Python of `SPDL_TEST_PYTHON` or the
    /// test virtual environment that `scripts/test.sh` makes.
    pub fn start(dirs: &[&str]) -> S3Server {
        let root = workspace();
        let python = std::env::var_os("SPDL_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv-test/bin/python"));
        assert!(
            python.exists(),
            "{} not found: run scripts/test.sh (it makes the venv with moto) or set SPDL_TEST_PYTHON",
            python.display()
        );
        let port = free_port();
        let mut child = Command::new(python)
            .arg(root.join("scripts/s3_server.py"))
            .args(["--port", &port.to_string(), "--bucket", BUCKET, "--relative-to"])
            .arg(&root)
            .args(dirs.iter().map(|d| root.join(d)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/s3_server.py");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), format!("ready {port}"), "S3 server did not start");
        S3Server {
            child,
            _stdin: stdin,
            port,
        }
    }

    /// Options pointing `object_store` at this server.
    pub fn config(&self) -> StoreConfig {
        StoreConfig::default()
            .with_option("aws_endpoint", format!("http://127.0.0.1:{}", self.port))
            .with_option("aws_access_key_id", "test")
            .with_option("aws_secret_access_key", "test")
            .with_option("aws_region", "us-east-1")
    }

    pub fn store(&self) -> Store {
        Store::open(&format!("s3://{BUCKET}"), &self.config()).unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Faults a [`FileServer`] injects, each for the first N requests.
#[derive(Default)]
pub struct Faults {
    /// Answer 503 to this many requests.
    pub unavailable: AtomicUsize,
    /// Send headers and half the body, then close, this many times.
    pub drop_mid_body: AtomicUsize,
    /// Wait this long before answering every request (milliseconds).
    pub delay_ms: AtomicUsize,
    /// Answer every request with the whole file (200), ignoring `Range`,
    /// as `python -m http.server` does, when non-zero.
    pub ignore_range: AtomicUsize,
    /// Serve a file only to requests with this query (`sig=...`), as a
    /// pre-signed URL is served; any query when unset.
    pub required_query: std::sync::Mutex<Option<String>>,
}

/// An HTTP/1.1 server of the files under a root, with `Range` and `HEAD`
/// support and [`Faults`]. Counts requests. Runs until the process exits.
pub struct FileServer {
    pub port: u16,
    pub faults: Arc<Faults>,
    pub requests: Arc<AtomicUsize>,
}

impl FileServer {
    pub fn start(root: &Path) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(Faults::default());
        let requests = Arc::new(AtomicUsize::new(0));
        let (root, f, r) = (root.to_path_buf(), faults.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (root, f, r) = (root.clone(), f.clone(), r.clone());
                std::thread::spawn(move || serve(stream, &root, &f, &r));
            }
        });
        FileServer { port, faults, requests }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn store(&self, config: &StoreConfig) -> Store {
        Store::open(&self.url(), config).unwrap()
    }
}

/// Takes one from `counter` if it is positive.
fn take(counter: &AtomicUsize) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn serve(stream: TcpStream, root: &Path, faults: &Faults, requests: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut range = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("range: bytes=") {
                let (a, b) = v.trim().split_once('-').unwrap();
                range = Some((a.parse::<u64>().unwrap(), b.parse::<u64>().ok()));
            }
        }
        requests.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(faults.delay_ms.load(Ordering::SeqCst) as u64));
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let required = faults.required_query.lock().unwrap().clone();
        if required.is_some_and(|q| q != query) {
            let _ = out.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        if take(&faults.unavailable) {
            let _ = out.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
            continue;
        }
        let Ok(data) = std::fs::read(root.join(path.trim_start_matches('/'))) else {
            let _ = out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
            continue;
        };
        let len = data.len() as u64;
        if faults.ignore_range.load(Ordering::SeqCst) != 0 {
            range = None;
        }
        let (status, body, extra) = match range {
            Some((a, b)) if a < len => {
                let end = b.map_or(len - 1, |b| b.min(len - 1));
                let extra = format!("Content-Range: bytes {a}-{end}/{len}\r\n");
                ("206 Partial Content", &data[a as usize..=end as usize], extra)
            }
            Some(_) => {
                let _ = out.write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\n\r\n");
                continue;
            }
            None => ("200 OK", &data[..], String::new()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: \"{len}\"\r\nAccept-Ranges: bytes\r\n{extra}\r\n",
            body.len()
        );
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        if method == "HEAD" {
            continue;
        }
        if take(&faults.drop_mid_body) {
            let _ = out.write_all(&body[..body.len() / 2]);
            return; // closes the connection mid-body
        }
        if out.write_all(body).is_err() {
            return;
        }
    }
}

/// Reads a whole stream (for comparing remote and local bytes).
pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}
