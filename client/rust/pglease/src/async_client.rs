//! The async client, on tokio.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{self, Call};
use crate::client::ClientBuilder;
use crate::error::{Code, Error, Result};
use crate::http::Response;
use crate::lease::Lease;
use crate::model::{
    AcquireOptions, EnsureOptions, Ensured, LeaseInfo, LeaseListWire, LeaseSummary, ReleaseMode, ResetOutcome,
    ResetWire, Template, TemplateListWire,
};
use crate::transport::{AsyncTransport, BlockingTransport};

impl ClientBuilder {
    /// The async client.
    pub fn build_async(&self) -> Result<AsyncClient> {
        let endpoint = self.endpoint()?;
        Ok(AsyncClient {
            transport: Arc::new(AsyncTransport::new(endpoint.clone())),
            blocking: Arc::new(BlockingTransport::new(endpoint)),
        })
    }
}

/// An async client of pgleased's HTTP API on tokio; the same calls as [`crate::Client`].
/// Cheap to clone. The [`Lease`] guards it hands out still release on drop with a blocking
/// call, which never touches the runtime; [`AsyncClient::release`] releases without blocking.
///
/// A call whose future is dropped midway may still have been served: an acquire cancelled
/// that way leaves its lease to the TTL.
#[derive(Clone)]
pub struct AsyncClient {
    transport: Arc<AsyncTransport>,
    blocking: Arc<BlockingTransport>,
}

impl std::fmt::Debug for AsyncClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncClient").field("url", &self.transport.endpoint.url).finish()
    }
}

impl AsyncClient {
    /// A client of `$PGLEASE_URL` (else [`crate::DEFAULT_URL`]) with `$PGLEASE_TOKEN`.
    pub fn from_env() -> Result<AsyncClient> {
        ClientBuilder::default().build_async()
    }

    /// A client of `url`, with `$PGLEASE_TOKEN`.
    pub fn new(url: &str) -> Result<AsyncClient> {
        ClientBuilder::default().url(url).build_async()
    }

    pub fn url(&self) -> &str {
        &self.transport.endpoint.url
    }

    async fn call(&self, call: &Call) -> Result<Response> {
        let timeout = self.transport.endpoint.timeout;
        let give_up_at = Instant::now() + timeout;
        loop {
            let answer = self
                .transport
                .exchange(call.method, &call.target, call.body.as_deref(), timeout + call.extra_wait)
                .await
                .and_then(|response| api::check(call, response));
            match answer {
                Err(error) if call.retry_not_ready => match api::retry_pause(&error, give_up_at) {
                    Some(pause) => tokio::time::sleep(pause).await,
                    None => return Err(error),
                },
                answer => return answer,
            }
        }
    }

    /// Leases a clone of `template`; the guard releases it when dropped.
    pub async fn acquire(&self, template: &str, options: &AcquireOptions) -> Result<Lease> {
        let call = api::acquire(template, options);
        let info: LeaseInfo = api::decode(&call, self.call(&call).await?)?;
        Ok(Lease::new(info, self.blocking.clone()))
    }

    /// Moves the lease's expiry to now + `ttl` (default the template's TTL).
    pub async fn renew(&self, lease: &mut Lease, ttl: Option<Duration>) -> Result<()> {
        let call = api::renew(&lease.id, ttl);
        lease.replace_info(api::decode(&call, self.call(&call).await?)?);
        Ok(())
    }

    /// Makes the leased database fresh again, keeping the lease; see [`crate::Client::reset`].
    pub async fn reset(&self, lease: &mut Lease) -> Result<ResetOutcome> {
        let call = api::reset(&lease.id);
        let answer = self.call(&call).await.map_err(api::reset_error)?;
        let wire: ResetWire = api::decode(&call, answer)?;
        lease.replace_info(wire.lease);
        Ok(wire.reset)
    }

    /// Ends the lease with `mode`, without blocking. On an error the guard is disarmed all the
    /// same: the lease then ends at its TTL.
    pub async fn release(&self, mut lease: Lease, mode: ReleaseMode) -> Result<()> {
        lease.disarm();
        self.release_id(&lease.id, mode).await
    }

    /// Ends the lease with this id.
    pub async fn release_id(&self, id: &str, mode: ReleaseMode) -> Result<()> {
        self.call(&api::release(id, mode)).await.map(drop)
    }

    /// The live lease with this id; [`Code::UnknownLease`] once it ended.
    pub async fn lease(&self, id: &str) -> Result<LeaseInfo> {
        let call = api::lease(id);
        api::decode(&call, self.call(&call).await?)
    }

    pub async fn leases(&self) -> Result<Vec<LeaseSummary>> {
        let call = api::leases();
        Ok(api::decode::<LeaseListWire>(&call, self.call(&call).await?)?.leases)
    }

    pub async fn template(&self, name: &str) -> Result<Template> {
        let call = api::template(name);
        api::decode(&call, self.call(&call).await?)
    }

    pub async fn templates(&self) -> Result<Vec<Template>> {
        let call = api::templates();
        Ok(api::decode::<TemplateListWire>(&call, self.call(&call).await?)?.templates)
    }

    /// See [`crate::Client::ensure_template`].
    pub async fn ensure_template(&self, name: &str, fingerprint: &str, options: &EnsureOptions) -> Result<Ensured> {
        let call = api::ensure(name, fingerprint, options);
        api::decode_ensured(&call, self.call(&call).await?)
    }

    pub async fn finalize_build(&self, name: &str, fingerprint: &str, build_id: &str) -> Result<Template> {
        let call = api::finalize(name, fingerprint, build_id);
        api::decode(&call, self.call(&call).await?)
    }

    pub async fn abort_build(&self, name: &str, fingerprint: &str, build_id: &str) -> Result<()> {
        self.call(&api::abort(name, fingerprint, build_id)).await.map(drop)
    }

    /// Whether `/readyz` answers 200; an error only when nothing answers.
    pub async fn ready(&self) -> Result<bool> {
        match self.call(&api::readyz()).await {
            Ok(_) => Ok(true),
            Err(Error::Api(api)) if api.status == 503 || api.code == Code::NotReady => Ok(false),
            Err(error) => Err(error),
        }
    }

    pub(crate) fn blocking_transport(&self) -> &Arc<BlockingTransport> {
        &self.blocking
    }
}
