//! Sockets to pgleased: a blocking transport on `std::net` (the blocking client, and every
//! `Lease` guard's release on drop, inside or outside a tokio runtime) and an async one on
//! tokio. Both keep finished connections for the next call and send a request again, once, on
//! a fresh connection when a kept one turns out to have been closed by the server meanwhile.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::http::{Endpoint, Response, parse_response};

/// Kept-alive connections beyond this many are closed.
const MAX_IDLE: usize = 8;

/// Why an exchange failed.
enum Failure {
    /// The connection closed or was reset before a byte of the answer came: a kept connection
    /// the server had closed, so the request may be sent again on a new one.
    ClosedUnanswered,
    TimedOut,
    Io(std::io::Error),
    Protocol(String),
}

impl Failure {
    fn into_error(self, endpoint: &Endpoint) -> Error {
        match self {
            Failure::ClosedUnanswered => Error::unreachable(&endpoint.url, "the connection closed before an answer"),
            Failure::TimedOut => Error::unreachable(&endpoint.url, "timed out"),
            Failure::Io(error) => Error::unreachable(&endpoint.url, describe(&error)),
            Failure::Protocol(what) => Error::Protocol(what),
        }
    }
}

fn describe(error: &std::io::Error) -> String {
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "timed out".into(),
        _ => error.to_string(),
    }
}

fn unanswered(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted | ErrorKind::UnexpectedEof
    )
}

fn remaining(deadline: Instant) -> std::result::Result<Duration, Failure> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(Failure::TimedOut),
    }
}

/// Blocking calls over `std::net`: usable from any thread, a tokio worker included, since it
/// never touches a runtime.
pub(crate) struct BlockingTransport {
    pub endpoint: Endpoint,
    idle: Mutex<Vec<TcpStream>>,
}

impl BlockingTransport {
    pub fn new(endpoint: Endpoint) -> BlockingTransport {
        BlockingTransport { endpoint, idle: Mutex::new(Vec::new()) }
    }

    /// One request and its whole answer, within `limit`.
    pub fn exchange(&self, method: &str, target: &str, body: Option<&[u8]>, limit: Duration) -> Result<Response> {
        let request = self.endpoint.request(method, target, body);
        let deadline = Instant::now() + limit;
        loop {
            let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let reused = kept.is_some();
            let outcome = match kept {
                Some(stream) => Ok(stream),
                None => self.connect(deadline),
            }
            .and_then(|mut stream| round_trip(&mut stream, &request, deadline).map(|answer| (stream, answer)));
            match outcome {
                Ok((stream, answer)) => {
                    if !answer.close {
                        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                        if idle.len() < MAX_IDLE {
                            idle.push(stream);
                        }
                    }
                    return Ok(answer);
                }
                Err(Failure::ClosedUnanswered) if reused => continue,
                Err(failure) => return Err(failure.into_error(&self.endpoint)),
            }
        }
    }

    fn connect(&self, deadline: Instant) -> std::result::Result<TcpStream, Failure> {
        let addresses = (self.endpoint.host.as_str(), self.endpoint.port).to_socket_addrs().map_err(Failure::Io)?;
        let mut last = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, remaining(deadline)?) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(error) => last = Some(error),
            }
        }
        Err(Failure::Io(last.unwrap_or_else(|| std::io::Error::other("the host name has no address"))))
    }
}

/// The answer in `received` once the server closed the connection.
fn at_close(received: &[u8]) -> std::result::Result<Response, Failure> {
    match parse_response(received, true) {
        Ok(Some(answer)) => Ok(answer),
        Ok(None) => Err(Failure::Protocol("the connection closed before a whole response arrived".into())),
        Err(what) => Err(Failure::Protocol(what)),
    }
}

fn round_trip(stream: &mut TcpStream, request: &[u8], deadline: Instant) -> std::result::Result<Response, Failure> {
    stream.set_write_timeout(Some(remaining(deadline)?)).map_err(Failure::Io)?;
    if let Err(error) = stream.write_all(request) {
        return Err(if unanswered(&error) { Failure::ClosedUnanswered } else { Failure::Io(error) });
    }
    let mut received = Vec::with_capacity(4096);
    let mut chunk = [0u8; 16 << 10];
    loop {
        stream.set_read_timeout(Some(remaining(deadline)?)).map_err(Failure::Io)?;
        match stream.read(&mut chunk) {
            Ok(0) if received.is_empty() => return Err(Failure::ClosedUnanswered),
            Ok(0) => return at_close(&received),
            Ok(count) => {
                received.extend_from_slice(&chunk[..count]);
                if let Some(answer) = parse_response(&received, false).map_err(Failure::Protocol)? {
                    return Ok(answer);
                }
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(Failure::TimedOut);
            }
            Err(error) if received.is_empty() && unanswered(&error) => return Err(Failure::ClosedUnanswered),
            Err(error) => return Err(Failure::Io(error)),
        }
    }
}

#[cfg(feature = "tokio")]
pub(crate) use self::nonblocking::AsyncTransport;

#[cfg(feature = "tokio")]
mod nonblocking {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Async calls on tokio's sockets; a call's future may be dropped at any await.
    pub(crate) struct AsyncTransport {
        pub endpoint: Endpoint,
        idle: Mutex<Vec<TcpStream>>,
    }

    impl AsyncTransport {
        pub fn new(endpoint: Endpoint) -> AsyncTransport {
            AsyncTransport { endpoint, idle: Mutex::new(Vec::new()) }
        }

        /// One request and its whole answer, within `limit`.
        pub async fn exchange(
            &self,
            method: &str,
            target: &str,
            body: Option<&[u8]>,
            limit: Duration,
        ) -> Result<Response> {
            let request = self.endpoint.request(method, target, body);
            let deadline = Instant::now() + limit;
            loop {
                let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let reused = kept.is_some();
                let attempt = async {
                    let mut stream = match kept {
                        Some(stream) => stream,
                        None => self.connect().await?,
                    };
                    let answer = round_trip(&mut stream, &request).await?;
                    Ok::<_, Failure>((stream, answer))
                };
                let outcome = match tokio::time::timeout_at(deadline.into(), attempt).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(Failure::TimedOut),
                };
                match outcome {
                    Ok((stream, answer)) => {
                        if !answer.close {
                            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                            if idle.len() < MAX_IDLE {
                                idle.push(stream);
                            }
                        }
                        return Ok(answer);
                    }
                    Err(Failure::ClosedUnanswered) if reused => continue,
                    Err(failure) => return Err(failure.into_error(&self.endpoint)),
                }
            }
        }

        async fn connect(&self) -> std::result::Result<TcpStream, Failure> {
            let stream =
                TcpStream::connect((self.endpoint.host.as_str(), self.endpoint.port)).await.map_err(Failure::Io)?;
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }

    async fn round_trip(stream: &mut TcpStream, request: &[u8]) -> std::result::Result<Response, Failure> {
        if let Err(error) = stream.write_all(request).await {
            return Err(if unanswered(&error) { Failure::ClosedUnanswered } else { Failure::Io(error) });
        }
        let mut received = Vec::with_capacity(4096);
        let mut chunk = [0u8; 16 << 10];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) if received.is_empty() => return Err(Failure::ClosedUnanswered),
                Ok(0) => return at_close(&received),
                Ok(count) => {
                    received.extend_from_slice(&chunk[..count]);
                    if let Some(answer) = parse_response(&received, false).map_err(Failure::Protocol)? {
                        return Ok(answer);
                    }
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) if received.is_empty() && unanswered(&error) => return Err(Failure::ClosedUnanswered),
                Err(error) => return Err(Failure::Io(error)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A server that answers one request per connection with keep-alive, then closes it (as
    /// pgleased does to a connection idle for 60 s), `connections` times.
    fn closing_server(connections: usize) -> (Endpoint, std::thread::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut served = 0;
            for _ in 0..connections {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                    line.clear();
                }
                (&stream).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
                served += 1;
                drop(reader);
                drop(stream);
            }
            served
        });
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}"), None, Duration::from_secs(5)).unwrap();
        (endpoint, server)
    }

    #[test]
    fn a_kept_connection_the_server_closed_is_replaced_once() {
        let (endpoint, server) = closing_server(3);
        let transport = BlockingTransport::new(endpoint);
        for _ in 0..3 {
            let answer = transport.exchange("GET", "/v1/templates", None, Duration::from_secs(5)).unwrap();
            assert_eq!((answer.status, answer.body.as_slice()), (200, &b"{}"[..]));
            std::thread::sleep(Duration::from_millis(50)); // the server closes meanwhile
        }
        assert_eq!(server.join().unwrap(), 3);
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn the_async_transport_replaces_closed_connections_too() {
        let (endpoint, server) = closing_server(3);
        let transport = AsyncTransport::new(endpoint);
        for _ in 0..3 {
            let answer = transport.exchange("GET", "/v1/templates", None, Duration::from_secs(5)).await.unwrap();
            assert_eq!(answer.status, 200);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(tokio::task::spawn_blocking(move || server.join().unwrap()).await.unwrap(), 3);
    }

    #[test]
    fn nothing_listening_is_refused_not_a_hang() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}"), None, Duration::from_secs(5)).unwrap();
        match BlockingTransport::new(endpoint).exchange("GET", "/", None, Duration::from_secs(5)) {
            Err(Error::Unreachable { reason, .. }) => assert_eq!(reason, "connection refused"),
            other => panic!("{other:?}"),
        }
    }
}
