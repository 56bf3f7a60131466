//! The `Lease` guard: a leased database that is released when the guard goes out of scope.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use crate::api;
use crate::error::{Code, Error, Result};
use crate::model::{LeaseInfo, ReleaseMode};
use crate::transport::BlockingTransport;

/// A leased database. Dropping the guard releases the lease synchronously with a plain blocking
/// HTTP call (`std::net`, no runtime), so it works the same in a `#[test]`, a `#[tokio::test]`
/// of either flavour, and while a panic unwinds. A process killed before the drop runs leaves
/// the lease to its TTL, after which the broker recycles the clone.
///
/// Derefs to [`LeaseInfo`]: `lease.dsn`, `lease.database`, …
pub struct Lease {
    info: LeaseInfo,
    /// `None` once released or disarmed.
    transport: Option<Arc<BlockingTransport>>,
    on_drop: ReleaseMode,
    on_panic: ReleaseMode,
}

impl Lease {
    pub(crate) fn new(info: LeaseInfo, transport: Arc<BlockingTransport>) -> Lease {
        Lease { info, transport: Some(transport), on_drop: ReleaseMode::Recycle, on_panic: ReleaseMode::Recycle }
    }

    /// The lease as pgleased last described it.
    pub fn info(&self) -> &LeaseInfo {
        &self.info
    }

    pub(crate) fn replace_info(&mut self, info: LeaseInfo) {
        self.info = info;
    }

    /// What the drop does with the clone (default [`ReleaseMode::Recycle`]).
    pub fn set_release_on_drop(&mut self, mode: ReleaseMode) {
        self.on_drop = mode;
    }

    /// What the drop does with the clone while the thread panics, e.g. in a failing test
    /// (default [`ReleaseMode::Recycle`]). With [`ReleaseMode::Keep`] it prints where the kept
    /// database is.
    pub fn set_release_on_panic(&mut self, mode: ReleaseMode) {
        self.on_panic = mode;
    }

    /// Releases the lease now, recycling the clone.
    pub fn release(self) -> Result<()> {
        self.release_with(ReleaseMode::Recycle)
    }

    /// Releases the lease now with `mode`.
    pub fn release_with(mut self, mode: ReleaseMode) -> Result<()> {
        match self.transport.take() {
            Some(transport) => release_blocking(&transport, &self.info.id, mode),
            None => Ok(()),
        }
    }

    /// Gives the lease up without releasing it: it lasts until its TTL, or until someone
    /// releases it by id.
    pub fn into_info(mut self) -> LeaseInfo {
        self.transport = None;
        std::mem::take(&mut self.info)
    }

    /// Marks the lease as ended elsewhere (released by an async call), so the drop does nothing.
    #[cfg(feature = "tokio")]
    pub(crate) fn disarm(&mut self) {
        self.transport = None;
    }
}

impl Deref for Lease {
    type Target = LeaseInfo;
    fn deref(&self) -> &LeaseInfo {
        &self.info
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("info", &self.info)
            .field("armed", &self.transport.is_some())
            .field("on_drop", &self.on_drop)
            .finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(transport) = self.transport.take() else { return };
        let mode = if std::thread::panicking() { self.on_panic } else { self.on_drop };
        match release_blocking(&transport, &self.info.id, mode) {
            Ok(()) => {
                if let ReleaseMode::Keep(keep) = mode {
                    let how_long = keep.map(|k| format!(" for {} s", k.as_secs())).unwrap_or_default();
                    eprintln!("pglease: kept database {}{how_long}: {}", self.info.database, self.info.dsn);
                }
            }
            Err(Error::Api(api)) if api.code == Code::UnknownLease => {
                eprintln!(
                    "pglease: lease on {} had already ended (expired at {}?)",
                    self.info.database, self.info.expires_at
                );
            }
            Err(error) => eprintln!(
                "pglease: could not release the lease on {}: {error}; it expires at {}",
                self.info.database, self.info.expires_at
            ),
        }
    }
}

/// `DELETE /v1/leases/{id}` over the blocking transport, asking again while pgleased starts.
pub(crate) fn release_blocking(transport: &BlockingTransport, id: &str, mode: ReleaseMode) -> Result<()> {
    call_blocking(transport, &api::release(id, mode)).map(drop)
}

/// One call over the blocking transport, asking again on `503 not_ready` until the timeout.
pub(crate) fn call_blocking(transport: &BlockingTransport, call: &api::Call) -> Result<crate::http::Response> {
    let timeout = transport.endpoint.timeout;
    let give_up_at = Instant::now() + timeout;
    loop {
        let answer = transport
            .exchange(call.method, &call.target, call.body.as_deref(), timeout + call.extra_wait)
            .and_then(|response| api::check(call, response));
        match answer {
            Err(error) if call.retry_not_ready => match api::retry_pause(&error, give_up_at) {
                Some(pause) => std::thread::sleep(pause),
                None => return Err(error),
            },
            answer => return answer,
        }
    }
}
