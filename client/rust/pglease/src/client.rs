//! The blocking client, and the settings both clients are made from.

use std::sync::Arc;
use std::time::Duration;

use crate::api::{self, Call};
use crate::error::{Code, Error, Result};
use crate::http::{Endpoint, Response};
use crate::lease::{Lease, call_blocking, release_blocking};
use crate::model::{
    AcquireOptions, EnsureOptions, Ensured, LeaseInfo, LeaseListWire, LeaseSummary, ReleaseMode, ResetOutcome,
    ResetWire, Template, TemplateListWire,
};
use crate::transport::BlockingTransport;

/// pgleased's address when `PGLEASE_URL` is not set.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7432";

/// Where pgleased is and how long a call may take; makes a [`Client`] or an `AsyncClient`.
#[derive(Clone, Debug, Default)]
pub struct ClientBuilder {
    url: Option<String>,
    token: Option<String>,
    timeout: Option<Duration>,
}

impl ClientBuilder {
    /// pgleased's address; default `$PGLEASE_URL`, else [`DEFAULT_URL`].
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The daemon's token; default `$PGLEASE_TOKEN`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Bounds every call (plus the wait an acquire or ensure asks the server for), and how long
    /// calls are made again while pgleased starts (`503 not_ready`). Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn endpoint(&self) -> Result<Endpoint> {
        let from_env = |name| std::env::var(name).ok().filter(|value: &String| !value.is_empty());
        let url = self.url.clone().or_else(|| from_env("PGLEASE_URL")).unwrap_or_else(|| DEFAULT_URL.to_owned());
        let token = self.token.clone().or_else(|| from_env("PGLEASE_TOKEN"));
        Endpoint::parse(&url, token, self.timeout.unwrap_or(Duration::from_secs(30)))
    }

    /// The blocking client.
    pub fn build(&self) -> Result<Client> {
        Ok(Client { transport: Arc::new(BlockingTransport::new(self.endpoint()?)) })
    }
}

/// A blocking client of pgleased's HTTP API. Cheap to clone; clones share kept-alive
/// connections. Safe to use from any thread, tokio's included (it never touches a runtime).
#[derive(Clone)]
pub struct Client {
    transport: Arc<BlockingTransport>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("url", &self.transport.endpoint.url).finish()
    }
}

impl Client {
    /// A client of `$PGLEASE_URL` (else [`DEFAULT_URL`]) with `$PGLEASE_TOKEN`.
    pub fn from_env() -> Result<Client> {
        ClientBuilder::default().build()
    }

    /// A client of `url`, with `$PGLEASE_TOKEN`.
    pub fn new(url: &str) -> Result<Client> {
        ClientBuilder::default().url(url).build()
    }

    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// pgleased's address.
    pub fn url(&self) -> &str {
        &self.transport.endpoint.url
    }

    fn call(&self, call: &Call) -> Result<Response> {
        call_blocking(&self.transport, call)
    }

    /// Leases a clone of `template`; the guard releases it when dropped.
    pub fn acquire(&self, template: &str, options: &AcquireOptions) -> Result<Lease> {
        let call = api::acquire(template, options);
        let info: LeaseInfo = api::decode(&call, self.call(&call)?)?;
        Ok(Lease::new(info, self.transport.clone()))
    }

    /// Moves the lease's expiry to now + `ttl` (default the template's TTL).
    pub fn renew(&self, lease: &mut Lease, ttl: Option<Duration>) -> Result<()> {
        let call = api::renew(&lease.id, ttl);
        lease.replace_info(api::decode(&call, self.call(&call)?)?);
        Ok(())
    }

    /// Makes the leased database fresh again, keeping the lease: same id, database, DSN and
    /// expiry. Undone in place, sessions idle outside a transaction stay connected and see the
    /// template's state ([`ResetResult::Reset`](crate::ResetResult::Reset)); when pgleased cannot prove that exact (DDL, …)
    /// it clones the database again under the same name and ends its sessions
    /// ([`ResetResult::Reclone`](crate::ResetResult::Reclone), with the reason). Refused with 409 [`Code::SessionsBusy`]
    /// (`retry_after` 1 s, the message naming the pids) while a session on it is inside a
    /// transaction or running a statement; [`Error::ResetUnsupported`] from a pgleased without
    /// `POST /v1/leases/{id}/reset`.
    pub fn reset(&self, lease: &mut Lease) -> Result<ResetOutcome> {
        let call = api::reset(&lease.id);
        let answer = self.call(&call).map_err(api::reset_error)?;
        let wire: ResetWire = api::decode(&call, answer)?;
        lease.replace_info(wire.lease);
        Ok(wire.reset)
    }

    /// Ends the lease with `mode`.
    pub fn release(&self, lease: Lease, mode: ReleaseMode) -> Result<()> {
        lease.release_with(mode)
    }

    /// Ends the lease with this id (one given up with [`Lease::into_info`], or another process's).
    pub fn release_id(&self, id: &str, mode: ReleaseMode) -> Result<()> {
        release_blocking(&self.transport, id, mode)
    }

    /// The live lease with this id; [`Code::UnknownLease`] once it ended.
    pub fn lease(&self, id: &str) -> Result<LeaseInfo> {
        let call = api::lease(id);
        api::decode(&call, self.call(&call)?)
    }

    /// Every live lease, without ids and passwords.
    pub fn leases(&self) -> Result<Vec<LeaseSummary>> {
        let call = api::leases();
        Ok(api::decode::<LeaseListWire>(&call, self.call(&call)?)?.leases)
    }

    /// A template's state, fingerprint and pool.
    pub fn template(&self, name: &str) -> Result<Template> {
        let call = api::template(name);
        api::decode(&call, self.call(&call)?)
    }

    pub fn templates(&self) -> Result<Vec<Template>> {
        let call = api::templates();
        Ok(api::decode::<TemplateListWire>(&call, self.call(&call)?)?.templates)
    }

    /// Asks for client-initialized template `name` at `fingerprint`: ready, or this caller must
    /// build it. [`Code::TemplateBuilding`] when another caller builds it for longer than the
    /// wait. [`Client::build_template`] does the whole dance.
    pub fn ensure_template(&self, name: &str, fingerprint: &str, options: &EnsureOptions) -> Result<Ensured> {
        let call = api::ensure(name, fingerprint, options);
        api::decode_ensured(&call, self.call(&call)?)
    }

    /// Declares the build's migrations done; the template is ready at `fingerprint`.
    pub fn finalize_build(&self, name: &str, fingerprint: &str, build_id: &str) -> Result<Template> {
        let call = api::finalize(name, fingerprint, build_id);
        api::decode(&call, self.call(&call)?)
    }

    /// Gives the build up; the next caller asking for `fingerprint` builds it.
    pub fn abort_build(&self, name: &str, fingerprint: &str, build_id: &str) -> Result<()> {
        self.call(&api::abort(name, fingerprint, build_id)).map(drop)
    }

    /// Whether `/readyz` answers 200; an error only when nothing answers.
    pub fn ready(&self) -> Result<bool> {
        match self.call(&api::readyz()) {
            Ok(_) => Ok(true),
            Err(Error::Api(api)) if api.status == 503 || api.code == Code::NotReady => Ok(false),
            Err(error) => Err(error),
        }
    }

    pub(crate) fn transport(&self) -> &Arc<BlockingTransport> {
        &self.transport
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    /// A server that answers the requests it gets, in order, one connection each.
    fn scripted(answers: Vec<&'static str>) -> (Client, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || {
            let mut asked = Vec::new();
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let (mut line, mut length) = (String::new(), 0);
                reader.read_line(&mut line).unwrap();
                asked.push(line.trim_end().to_owned());
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                reader.read_exact(&mut vec![0; length]).unwrap();
                stream.write_all(format!("HTTP/1.1 {answer}").as_bytes()).unwrap();
            }
            asked
        });
        (Client::builder().url(url).timeout(Duration::from_secs(10)).build().unwrap(), server)
    }

    const NOT_READY: &str = "503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 54\r\n\r\n{\"error\":{\"code\":\"not_ready\",\"message\":\"starting up\"}}";
    const TEMPLATES: &str = "200 OK\r\nConnection: close\r\nContent-Length: 16\r\n\r\n{\"templates\":[]}";
    const EXHAUSTED: &str = "503 Service Unavailable\r\nRetry-After: 3\r\nConnection: close\r\nContent-Length: 60\r\n\r\n{\"error\":{\"code\":\"pool_exhausted\",\"message\":\"at max_total\"}}";

    #[test]
    fn not_ready_is_asked_again_until_pgleased_answers() {
        let (client, server) = scripted(vec![NOT_READY, NOT_READY, TEMPLATES]);
        assert_eq!(client.templates().unwrap(), vec![]);
        assert_eq!(server.join().unwrap(), ["GET /v1/templates HTTP/1.1"; 3]);
    }

    const LEASE_FIELDS: &str = r#""id":"ab","template":"app","fingerprint":"f","database":"pglease_app_f_1","dsn":"postgresql://w:p@127.0.0.1:5/pglease_app_f_1","host":"127.0.0.1","port":5,"user":"w","password":"p","owner":"","labels":{},"acquired_at":"2026-01-01T00:00:00.000Z","expires_at":"2026-01-01T00:10:00.000Z","backend":"embedded""#;

    fn answer(status: &str, headers: &str, body: &str) -> &'static str {
        let text = format!("{status}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len());
        Box::leak(text.into_boxed_str())
    }

    #[test]
    fn a_reset_says_how_and_keeps_the_lease() {
        let lease_body = format!("{{{LEASE_FIELDS}}}");
        let reset_body =
            format!(r#"{{{LEASE_FIELDS},"reset":{{"result":"reclone","reason":"catalog: a table was created"}}}}"#);
        let (client, server) =
            scripted(vec![answer("201 Created", "", &lease_body), answer("200 OK", "", &reset_body)]);
        let mut lease = client.acquire("app", &AcquireOptions::new()).unwrap();
        let outcome = client.reset(&mut lease).unwrap();
        assert_eq!(outcome.result, crate::ResetResult::Reclone);
        assert_eq!(outcome.reason, "catalog: a table was created");
        assert_eq!((lease.id.as_str(), lease.database.as_str()), ("ab", "pglease_app_f_1"));
        lease.into_info();
        assert_eq!(
            server.join().unwrap(),
            ["POST /v1/templates/app/leases HTTP/1.1", "POST /v1/leases/ab/reset HTTP/1.1"]
        );
    }

    #[test]
    fn a_reset_refused_for_busy_sessions_is_typed_and_not_asked_again() {
        let lease_body = format!("{{{LEASE_FIELDS}}}");
        let busy = r#"{"error":{"code":"sessions_busy","message":"sessions on pglease_app_f_1 are in a transaction or running a statement: pid 42 (idle in transaction)"}}"#;
        let (client, server) =
            scripted(vec![answer("201 Created", "", &lease_body), answer("409 Conflict", "Retry-After: 1\r\n", busy)]);
        let mut lease = client.acquire("app", &AcquireOptions::new()).unwrap();
        match client.reset(&mut lease).unwrap_err() {
            Error::Api(api) => {
                assert_eq!(
                    (api.status, &api.code, api.retry_after),
                    (409, &Code::SessionsBusy, Some(Duration::from_secs(1)))
                );
                assert!(api.message.contains("pid 42"), "{}", api.message);
            }
            other => panic!("{other:?}"),
        }
        lease.into_info();
        assert_eq!(server.join().unwrap().len(), 2);
    }

    #[test]
    fn other_refusals_are_typed_and_not_asked_again() {
        let (client, server) = scripted(vec![EXHAUSTED]);
        let error = client.acquire("app", &AcquireOptions::new()).unwrap_err();
        match &error {
            Error::Api(api) => {
                assert_eq!(
                    (api.status, &api.code, api.retry_after),
                    (503, &Code::PoolExhausted, Some(Duration::from_secs(3)))
                );
                assert_eq!(api.message, "at max_total");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.join().unwrap(), ["POST /v1/templates/app/leases HTTP/1.1"]);
    }
}
