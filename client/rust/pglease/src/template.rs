//! Client-initialized templates: ensure one by fingerprint, and build it when this caller wins.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api;
use crate::client::Client;
use crate::error::{Code, Error, Result};
use crate::lease::call_blocking;
use crate::model::{Build, EnsureOptions, Ensured, Template};
use crate::transport::BlockingTransport;

/// A ready version of a client-initialized template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateVersion {
    pub name: String,
    pub fingerprint: String,
    /// True in the one caller that ran the migrations.
    pub built: bool,
    pub template: Template,
}

/// How long to wait for a template version, and how long a build may take.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// How long to wait, in all, while another caller builds (default 600 s).
    pub timeout: Duration,
    /// This caller's build lease: it finalizes or aborts within it, or the next caller builds
    /// (default 600 s).
    pub build_ttl: Duration,
}

impl Default for BuildOptions {
    fn default() -> BuildOptions {
        BuildOptions { timeout: Duration::from_secs(600), build_ttl: Duration::from_secs(600) }
    }
}

/// Aborts the build when dropped before it was finalized: a migration that panicked, or an
/// async build whose future was dropped, lets the next caller build at once.
struct AbortOnDrop {
    transport: Arc<BlockingTransport>,
    name: String,
    fingerprint: String,
    build_id: Option<String>,
}

impl AbortOnDrop {
    fn disarm(&mut self) {
        self.build_id = None;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(build_id) = self.build_id.take() {
            // The build lease expires on its own; the migration's error matters more than this one.
            let _ = call_blocking(&self.transport, &api::abort(&self.name, &self.fingerprint, &build_id));
        }
    }
}

/// One round of the ensure loop: what to do after an ensure answered.
enum Next {
    Done(TemplateVersion),
    Build(Build),
    AskAgain,
}

fn next(name: &str, fingerprint: &str, answer: Result<Ensured>, give_up_at: Instant) -> Result<Next> {
    match answer {
        Ok(Ensured::Ready(template)) => Ok(Next::Done(TemplateVersion {
            name: name.to_owned(),
            fingerprint: fingerprint.to_owned(),
            built: false,
            template,
        })),
        Ok(Ensured::Build(_, build)) => Ok(Next::Build(build)),
        Err(error) if error.code() == Some(&Code::TemplateBuilding) && Instant::now() < give_up_at => {
            Ok(Next::AskAgain)
        }
        Err(error) => Err(error),
    }
}

fn ensure_options(options: &BuildOptions, give_up_at: Instant) -> EnsureOptions {
    let left = give_up_at.saturating_duration_since(Instant::now());
    EnsureOptions {
        wait: Some(left.clamp(Duration::from_secs(1), Duration::from_secs(600))),
        build_ttl: Some(options.build_ttl),
    }
}

impl Client {
    /// Ensures client-initialized template `name` at `fingerprint`. Exactly one caller, over
    /// every process and language, is told to build: it runs `migrate` on the empty build
    /// database and finalizes, or aborts when `migrate` fails or panics ([`Error::Migration`]).
    /// Every other caller waits, up to `options.timeout`, until the version is ready.
    pub fn build_template<F, E>(
        &self,
        name: &str,
        fingerprint: &str,
        options: &BuildOptions,
        migrate: F,
    ) -> Result<TemplateVersion>
    where
        F: FnOnce(Build) -> std::result::Result<(), E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let give_up_at = Instant::now() + options.timeout;
        let build = loop {
            let answer = self.ensure_template(name, fingerprint, &ensure_options(options, give_up_at));
            match next(name, fingerprint, answer, give_up_at)? {
                Next::Done(version) => return Ok(version),
                Next::Build(build) => break build,
                Next::AskAgain => continue,
            }
        };
        let mut guard = AbortOnDrop {
            transport: self.transport().clone(),
            name: name.to_owned(),
            fingerprint: fingerprint.to_owned(),
            build_id: Some(build.id.clone()),
        };
        let build_id = build.id.clone();
        migrate(build).map_err(|error| Error::Migration(error.into()))?;
        guard.disarm();
        let template = self.finalize_build(name, fingerprint, &build_id)?;
        Ok(TemplateVersion { name: name.to_owned(), fingerprint: fingerprint.to_owned(), built: true, template })
    }
}

#[cfg(feature = "tokio")]
impl crate::AsyncClient {
    /// See [`Client::build_template`]; `migrate` is async. Dropping the future while it builds
    /// aborts the build.
    pub async fn build_template<F, Fut, E>(
        &self,
        name: &str,
        fingerprint: &str,
        options: &BuildOptions,
        migrate: F,
    ) -> Result<TemplateVersion>
    where
        F: FnOnce(Build) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let give_up_at = Instant::now() + options.timeout;
        let build = loop {
            let answer = self.ensure_template(name, fingerprint, &ensure_options(options, give_up_at)).await;
            match next(name, fingerprint, answer, give_up_at)? {
                Next::Done(version) => return Ok(version),
                Next::Build(build) => break build,
                Next::AskAgain => continue,
            }
        };
        let mut guard = AbortOnDrop {
            transport: self.blocking_transport().clone(),
            name: name.to_owned(),
            fingerprint: fingerprint.to_owned(),
            build_id: Some(build.id.clone()),
        };
        let build_id = build.id.clone();
        migrate(build).await.map_err(|error| Error::Migration(error.into()))?;
        guard.disarm();
        let template = self.finalize_build(name, fingerprint, &build_id).await?;
        Ok(TemplateVersion { name: name.to_owned(), fingerprint: fingerprint.to_owned(), built: true, template })
    }
}
