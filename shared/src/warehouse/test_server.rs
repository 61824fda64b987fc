//! A scripted HTTP/1.1 server on 127.0.0.1 for the client tests: each route (method and
//! path) answers from its own queue of canned responses, and every request is recorded.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Action {
    Respond,
    /// Close the connection after reading the request, without answering.
    HangUp,
}

#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub action: Action,
}

impl Canned {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Canned {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            action: Action::Respond,
        }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Canned {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.to_string(),
            action: Action::Respond,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn hang_up() -> Self {
        Canned {
            status: 0,
            headers: Vec::new(),
            body: String::new(),
            action: Action::HangUp,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct Route {
    queue: VecDeque<Canned>,
    /// Answer with this when the queue is empty.
    repeat: Option<Canned>,
}

#[derive(Default)]
struct State {
    routes: HashMap<(String, String), Route>,
    requests: Vec<Recorded>,
}

pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScriptedServer {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Ok(ScriptedServer { addr, state, task })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a response for `method path`.
    pub fn on(&self, method: &str, path: &str, canned: Canned) {
        if let Ok(mut s) = self.state.lock() {
            s.routes
                .entry((method.into(), path.into()))
                .or_default()
                .queue
                .push_back(canned);
        }
    }

    /// Answers `method path` with `canned` whenever its queue is empty.
    pub fn always(&self, method: &str, path: &str, canned: Canned) {
        if let Ok(mut s) = self.state.lock() {
            s.routes
                .entry((method.into(), path.into()))
                .or_default()
                .repeat = Some(canned);
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path == path)
            .count()
    }
}

async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut stream = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut stream).await else {
            return;
        };
        let canned = {
            let Ok(mut s) = state.lock() else { return };
            s.requests.push(request.clone());
            let route = s
                .routes
                .get_mut(&(request.method.clone(), request.path.clone()));
            match route {
                Some(route) => route.queue.pop_front().or_else(|| route.repeat.clone()),
                None => None,
            }
        };
        let canned = canned.unwrap_or_else(|| {
            Canned::text(
                599,
                &format!(
                    "script has no response for {} {}",
                    request.method, request.path
                ),
            )
        });
        if let Action::HangUp = canned.action {
            return;
        }
        let mut head = format!("HTTP/1.1 {} Scripted\r\n", canned.status);
        for (name, value) in &canned.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", canned.body.len()));
        let stream = stream.get_mut();
        if stream.write_all(head.as_bytes()).await.is_err()
            || stream.write_all(canned.body.as_bytes()).await.is_err()
            || stream.flush().await.is_err()
        {
            return;
        }
    }
}

async fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let path = target.split('?').next().unwrap_or(target).to_string();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if stream.read_line(&mut header).await.ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Sleeps a little; for tests that need the clock to move.
pub async fn pause(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
