//! HTTP from inside a node: a curl-like client (reqwest, proxies from the
//! environment ignored) and a one-line server that serves fixed content or a
//! directory and remembers who asked.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An HTTP request to send. The default timeout is 5 seconds.
///
/// ```
/// use netns_fixture::probes::http::HttpRequest;
/// let request = HttpRequest::post("http://10.0.0.11:4000/echo")
///     .header("content-type", "text/plain")
///     .body("hello")
///     .timeout(std::time::Duration::from_secs(1));
/// assert_eq!(request.method(), "POST");
/// ```
#[derive(Debug, Clone)]
pub struct HttpRequest {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
    resolve: Vec<(String, IpAddr)>,
}

impl HttpRequest {
    /// A GET of `url`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }
    /// A POST to `url`.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }
    /// A request with any method.
    pub fn new(method: &str, url: &str) -> Self {
        HttpRequest {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(5),
            resolve: Vec::new(),
        }
    }
    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    /// Sets the overall timeout (connect, send, receive).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Resolves host `name` to `address` for this request (like curl's `--resolve`).
    /// Several addresses for one name are tried in the order given (the first
    /// family first, the other after a short delay, as happy eyeballs does).
    pub fn resolve(mut self, name: &str, address: IpAddr) -> Self {
        self.resolve.push((name.into(), address));
        self
    }
    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }
    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends the request from the calling thread's namespace and waits for the answer.
    ///
    /// ```no_run
    /// use netns_fixture::probes::http::HttpRequest;
    /// let lab = netns_fixture::Lab::builtin("two_servers").unwrap();
    /// let response = lab.node("client").run(|| HttpRequest::get("http://10.0.0.233:6000/").send()).unwrap();
    /// assert_eq!(response.status, 200);
    /// ```
    pub fn send(&self) -> Result<HttpResponse, HttpError> {
        // The blocking client runs its own runtime on a thread it creates now, from
        // this thread: its sockets belong to this thread's namespace.
        let mut client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(self.timeout);
        for (name, addresses) in self.resolved() {
            client = client.resolve_to_addrs(name, &addresses);
        }
        let client = client.build().map_err(|e| self.error(e))?;
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).map_err(|_| {
            HttpError::new(self, format!("`{}` is not an HTTP method", self.method))
        })?;
        let mut request = client.request(method, &self.url).body(self.body.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request.send().map_err(|e| self.error(e))?;
        let status = response.status().as_u16();
        let headers = header_pairs(response.headers());
        let body = response.bytes().map_err(|e| self.error(e))?.to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// The `resolve` overrides, each name once with all its addresses in order:
    /// reqwest keeps only the last override of a name.
    fn resolved(&self) -> Vec<(&str, Vec<SocketAddr>)> {
        let mut names: Vec<(&str, Vec<SocketAddr>)> = Vec::new();
        for (name, address) in &self.resolve {
            let address = SocketAddr::new(*address, 0);
            match names.iter_mut().find(|(n, _)| n == name) {
                Some((_, addresses)) => addresses.push(address),
                None => names.push((name, vec![address])),
            }
        }
        names
    }

    /// Sends the request from an async context; sockets belong to the namespace of
    /// the runtime thread that opens them (inside a `#[netns_test]` async body: the node).
    pub async fn send_async(&self) -> Result<HttpResponse, HttpError> {
        let mut client = reqwest::Client::builder().no_proxy().timeout(self.timeout);
        for (name, addresses) in self.resolved() {
            client = client.resolve_to_addrs(name, &addresses);
        }
        let client = client.build().map_err(|e| self.error(e))?;
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).map_err(|_| {
            HttpError::new(self, format!("`{}` is not an HTTP method", self.method))
        })?;
        let mut request = client.request(method, &self.url).body(self.body.clone());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| self.error(e))?;
        let status = response.status().as_u16();
        let headers = header_pairs(response.headers());
        let body = response.bytes().await.map_err(|e| self.error(e))?.to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn error(&self, e: reqwest::Error) -> HttpError {
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            why.push_str(": ");
            why.push_str(&s.to_string());
            source = s.source();
        }
        let why = if e.is_timeout() {
            format!("no answer within {:?} ({why})", self.timeout)
        } else {
            why
        };
        HttpError::new(self, why)
    }
}

fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A request that got no HTTP answer: the message names the request and why.
#[derive(Debug, Clone)]
pub struct HttpError {
    /// `GET http://...`.
    pub request: String,
    /// Why it failed (connection refused, timeout, ...).
    pub reason: String,
}

impl HttpError {
    fn new(request: &HttpRequest, reason: String) -> Self {
        HttpError {
            request: format!("{} {}", request.method, request.url),
            reason,
        }
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.request, self.reason)
    }
}

impl std::error::Error for HttpError {}

/// What an [`HttpServer`] serves.
#[derive(Debug, Clone)]
pub enum Content {
    /// The same body for every path, with a content type.
    Fixed {
        /// The `content-type` header.
        content_type: String,
        /// The body.
        body: Vec<u8>,
    },
    /// Files under a directory, with listings for folders (like `python3 -m http.server`).
    Directory(PathBuf),
}

impl Content {
    /// Plain text for every path.
    ///
    /// ```
    /// let content = netns_fixture::probes::http::Content::text("Hello from Flask!\n");
    /// ```
    pub fn text(body: &str) -> Self {
        Content::Fixed {
            content_type: "text/plain; charset=utf-8".into(),
            body: body.as_bytes().to_vec(),
        }
    }
    /// The files under `root`.
    pub fn directory(root: impl Into<PathBuf>) -> Self {
        Content::Directory(root.into())
    }
}

/// A request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    /// Who connected, as the server saw it (after any NAT on the way).
    pub peer: SocketAddr,
    /// The method.
    pub method: String,
    /// The path with query.
    pub path: String,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A small HTTP/1.1 server on a background thread; stopped when dropped.
///
/// ```no_run
/// use netns_fixture::probes::http::Content;
/// let lab = netns_fixture::Lab::builtin("host_ns").unwrap();
/// let server = lab.node("ns_rifky").serve_http(4000, Content::text("hello\n")).unwrap();
/// let got = lab.node("host").http_get("http://10.0.0.11:4000/").unwrap();
/// assert_eq!(got.text(), "hello\n");
/// assert_eq!(server.requests()[0].peer.ip().to_string(), "10.0.0.10");
/// ```
pub struct HttpServer {
    address: SocketAddr,
    listener: std::os::fd::RawFd,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<ReceivedRequest>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on `address` in the calling thread's namespace and serves `content`.
    pub fn start(address: SocketAddr, content: Content) -> io::Result<HttpServer> {
        let listener = TcpListener::bind(address).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("binding the HTTP server to {address}: {e}"),
            )
        })?;
        let address = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let listener_fd = listener.as_raw_fd();
        let thread = {
            let (stop, requests) = (Arc::clone(&stop), Arc::clone(&requests));
            let content = Arc::new(content);
            std::thread::Builder::new()
                .name(format!("http-server-{address}"))
                .spawn(move || serve(listener, &content, &stop, &requests))?
        };
        Ok(HttpServer {
            address,
            listener: listener_fd,
            stop,
            requests,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the serving thread's poll at once. The thread owns the listener
        // and closes it only after it has seen `stop`, so the fd is still ours here.
        // SAFETY: shutdown on a socket fd that is open until the thread is joined.
        unsafe { libc::shutdown(self.listener, libc::SHUT_RDWR) };
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(
    listener: TcpListener,
    content: &Arc<Content>,
    stop: &AtomicBool,
    requests: &Arc<Mutex<Vec<ReceivedRequest>>>,
) {
    let mut poll = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: one valid pollfd; `Drop` wakes it with shutdown().
        unsafe { libc::poll(&mut poll, 1, 1000) };
        while let Ok((stream, peer)) = listener.accept() {
            let (content, requests) = (Arc::clone(content), Arc::clone(requests));
            std::thread::spawn(move || {
                let _ = handle(stream, peer, &content, &requests);
            });
        }
    }
}

fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    content: &Content,
    requests: &Mutex<Vec<ReceivedRequest>>,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("/").to_string(),
    );
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length.min(16 << 20)];
    reader.read_exact(&mut body)?;
    requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(ReceivedRequest {
            // The listener is dual-stack: IPv4 clients arrive as `::ffff:a.b.c.d`.
            peer: super::canonical(peer),
            method,
            path: path.clone(),
            headers,
            body,
        });
    let (status, content_type, body) = respond(content, &path);
    // One write: `write!` on the socket would send every piece of the header as
    // a segment of its own (and a capture would show them all).
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(&body);
    let mut stream = stream;
    stream.write_all(&response)?;
    stream.flush()
}

fn respond(content: &Content, path: &str) -> (&'static str, String, Vec<u8>) {
    match content {
        Content::Fixed { content_type, body } => ("200 OK", content_type.clone(), body.clone()),
        Content::Directory(root) => {
            let relative = path.split(['?', '#']).next().unwrap_or("/");
            let Some(file) = inside(root, relative) else {
                return (
                    "403 Forbidden",
                    "text/plain".into(),
                    b"forbidden\n".to_vec(),
                );
            };
            if file.is_dir() {
                let mut names: Vec<String> = std::fs::read_dir(&file)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if e.path().is_dir() {
                            format!("{name}/")
                        } else {
                            name
                        }
                    })
                    .collect();
                names.sort();
                let items: String = names
                    .iter()
                    .map(|n| format!("<li><a href=\"{n}\">{n}</a></li>\n"))
                    .collect();
                let page = format!(
                    "<!DOCTYPE html>\n<html><head><title>Directory listing for {relative}</title></head>\n<body><h1>Directory listing for {relative}</h1>\n<ul>\n{items}</ul></body></html>\n"
                );
                (
                    "200 OK",
                    "text/html; charset=utf-8".into(),
                    page.into_bytes(),
                )
            } else {
                match std::fs::read(&file) {
                    Ok(bytes) => ("200 OK", "application/octet-stream".into(), bytes),
                    Err(_) => (
                        "404 Not Found",
                        "text/plain".into(),
                        b"not found\n".to_vec(),
                    ),
                }
            }
        }
    }
}

/// `root` joined with the URL path, or `None` if the path tries to leave `root`.
fn inside(root: &Path, url_path: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for component in Path::new(url_path.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_paths_stay_inside_the_root() {
        let root = Path::new("/srv/www");
        assert_eq!(
            inside(root, "/a/b.txt"),
            Some(PathBuf::from("/srv/www/a/b.txt"))
        );
        assert_eq!(inside(root, "/"), Some(PathBuf::from("/srv/www")));
        assert_eq!(inside(root, "/../etc/passwd"), None);
    }
}
