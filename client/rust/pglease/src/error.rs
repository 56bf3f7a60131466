//! Errors of the pglease client: the server's answers with their codes, and the client's own.

use std::fmt;
use std::time::Duration;

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The stable machine-readable code of an error pgleased answered with (`proto/openapi.yaml`,
/// `ErrorCode`). Codes this client does not know yet arrive as [`Code::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Code {
    BadRequest,
    InvalidJson,
    InvalidArgument,
    Unauthorized,
    NotFound,
    UnknownTemplate,
    UnknownLease,
    UnknownBuild,
    /// The template has no version with the fingerprint an acquire named.
    UnknownVersion,
    MethodNotAllowed,
    RequestTimeout,
    Conflict,
    SessionsBusy,
    BodyTooLarge,
    HeadersTooLarge,
    InternalError,
    NotReady,
    PoolExhausted,
    TemplateFailed,
    TemplateBuilding,
    BackendDown,
    /// A code this client does not know, or `http_<status>` when the body had none.
    Other(String),
}

const CODES: &[(&str, Code)] = &[
    ("bad_request", Code::BadRequest),
    ("invalid_json", Code::InvalidJson),
    ("invalid_argument", Code::InvalidArgument),
    ("unauthorized", Code::Unauthorized),
    ("not_found", Code::NotFound),
    ("unknown_template", Code::UnknownTemplate),
    ("unknown_lease", Code::UnknownLease),
    ("unknown_build", Code::UnknownBuild),
    ("unknown_version", Code::UnknownVersion),
    ("method_not_allowed", Code::MethodNotAllowed),
    ("request_timeout", Code::RequestTimeout),
    ("conflict", Code::Conflict),
    ("sessions_busy", Code::SessionsBusy),
    ("body_too_large", Code::BodyTooLarge),
    ("headers_too_large", Code::HeadersTooLarge),
    ("internal_error", Code::InternalError),
    ("not_ready", Code::NotReady),
    ("pool_exhausted", Code::PoolExhausted),
    ("template_failed", Code::TemplateFailed),
    ("template_building", Code::TemplateBuilding),
    ("backend_down", Code::BackendDown),
];

impl Code {
    /// The code as the server spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Code::Other(text) => text,
            known => CODES.iter().find(|(_, code)| code == known).map(|(text, _)| *text).unwrap_or("?"),
        }
    }

    pub(crate) fn parse(text: &str) -> Code {
        CODES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, code)| code.clone())
            .unwrap_or_else(|| Code::Other(text.to_owned()))
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// pgleased answered with an error status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (400, 404, 409, 503, …).
    pub status: u16,
    /// The server's code.
    pub code: Code,
    /// The server's human-readable message; it names the field or the problem.
    pub message: String,
    /// The `Retry-After` header, when the server sent one (409 `sessions_busy`, 503).
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} {})", self.message, self.status, self.code)
    }
}

impl std::error::Error for ApiError {}

/// Anything the pglease client fails with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// pgleased answered with an error.
    Api(ApiError),
    /// No pgleased answered at `url`: refused, timed out, or the connection broke.
    Unreachable { url: String, reason: String },
    /// pgleased answered something this client cannot read.
    Protocol(String),
    /// This pgleased cannot reset a lease in place (it predates `POST /v1/leases/{id}/reset`).
    ResetUnsupported,
    /// The client was given a setting it cannot use (a URL that is not `http://host:port`, …).
    Config(String),
    /// Reading the migrations to fingerprint them failed.
    Io { path: String, source: std::io::Error },
    /// The suite's migrations failed on the build database; the build was aborted.
    Migration(Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// The server's code, when pgleased answered with an error.
    pub fn code(&self) -> Option<&Code> {
        match self {
            Error::Api(api) => Some(&api.code),
            _ => None,
        }
    }

    /// The HTTP status, when pgleased answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(api) => Some(api.status),
            _ => None,
        }
    }

    pub(crate) fn unreachable(url: &str, reason: impl Into<String>) -> Error {
        Error::Unreachable { url: url.to_owned(), reason: reason.into() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(api) => write!(f, "pgleased: {api}"),
            Error::Unreachable { url, reason } => write!(f, "cannot reach pgleased at {url}: {reason}"),
            Error::Protocol(what) => write!(f, "pgleased answered something unexpected: {what}"),
            Error::ResetUnsupported => {
                f.write_str("this pgleased cannot reset a lease in place (no POST /v1/leases/{id}/reset)")
            }
            Error::Config(what) => write!(f, "pglease: {what}"),
            Error::Io { path, source } => write!(f, "pglease: {path}: {source}"),
            Error::Migration(error) => write!(f, "pglease: the migrations failed: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Api(api) => Some(api),
            Error::Io { source, .. } => Some(source),
            Error::Migration(error) => Some(error.as_ref()),
            _ => None,
        }
    }
}

impl From<ApiError> for Error {
    fn from(api: ApiError) -> Error {
        Error::Api(api)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_are_kept() {
        for (text, code) in CODES {
            assert_eq!(Code::parse(text), *code);
            assert_eq!(code.as_str(), *text);
        }
        assert_eq!(Code::parse("brand_new"), Code::Other("brand_new".into()));
        assert_eq!(Code::parse("brand_new").as_str(), "brand_new");
    }
}
