//! The endpoints of `proto/openapi.yaml` as requests, and their answers as values or errors;
//! shared by the blocking and the async client, which only move the bytes.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Code, Error, Result};
use crate::http::{Response, segment};
use crate::model::{AcquireOptions, EnsureOptions, Ensured, EnsuredWire, ReleaseMode, seconds};

/// The wait the server applies when a call names none.
const SERVER_DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// One request to pgleased.
pub(crate) struct Call {
    pub method: &'static str,
    pub target: String,
    pub body: Option<Vec<u8>>,
    /// The server may hold this request on purpose this long (acquire's and ensure's wait).
    pub extra_wait: Duration,
    /// Ask again on `503 not_ready` (pgleased starting) until the client's timeout.
    pub retry_not_ready: bool,
}

impl Call {
    fn new(method: &'static str, target: String, body: Option<Value>) -> Call {
        Call {
            method,
            target,
            body: body.map(|value| value.to_string().into_bytes()),
            extra_wait: Duration::ZERO,
            retry_not_ready: true,
        }
    }
}

pub(crate) fn acquire(template: &str, options: &AcquireOptions) -> Call {
    let mut body = Map::new();
    if let Some(ttl) = options.ttl {
        body.insert("ttl_seconds".into(), json!(seconds(ttl, 1)));
    }
    if let Some(wait) = options.wait {
        body.insert("wait_seconds".into(), json!(seconds(wait, 0)));
    }
    if let Some(owner) = options.owner.as_deref().filter(|owner| !owner.is_empty()) {
        body.insert("owner".into(), json!(owner));
    }
    if !options.labels.is_empty() {
        body.insert("labels".into(), json!(options.labels));
    }
    if let Some(fingerprint) = &options.fingerprint {
        body.insert("fingerprint".into(), json!(fingerprint));
    }
    let mut call = Call::new("POST", format!("/v1/templates/{}/leases", segment(template)), Some(Value::Object(body)));
    call.extra_wait = options.wait.unwrap_or(SERVER_DEFAULT_WAIT);
    call
}

pub(crate) fn renew(id: &str, ttl: Option<Duration>) -> Call {
    let body = match ttl {
        Some(ttl) => json!({"ttl_seconds": seconds(ttl, 1)}),
        None => json!({}),
    };
    Call::new("POST", format!("/v1/leases/{}/renew", segment(id)), Some(body))
}

pub(crate) fn reset(id: &str) -> Call {
    Call::new("POST", format!("/v1/leases/{}/reset", segment(id)), Some(json!({})))
}

pub(crate) fn release(id: &str, mode: ReleaseMode) -> Call {
    let query = match mode {
        ReleaseMode::Recycle => "mode=recycle".to_owned(),
        ReleaseMode::Reuse => "mode=reuse".to_owned(),
        ReleaseMode::Keep(None) => "mode=keep".to_owned(),
        ReleaseMode::Keep(Some(keep)) => format!("mode=keep&keep_seconds={}", seconds(keep, 1)),
    };
    Call::new("DELETE", format!("/v1/leases/{}?{query}", segment(id)), None)
}

pub(crate) fn lease(id: &str) -> Call {
    Call::new("GET", format!("/v1/leases/{}", segment(id)), None)
}

pub(crate) fn leases() -> Call {
    Call::new("GET", "/v1/leases".into(), None)
}

pub(crate) fn template(name: &str) -> Call {
    Call::new("GET", format!("/v1/templates/{}", segment(name)), None)
}

pub(crate) fn templates() -> Call {
    Call::new("GET", "/v1/templates".into(), None)
}

pub(crate) fn ensure(name: &str, fingerprint: &str, options: &EnsureOptions) -> Call {
    let mut body = Map::new();
    body.insert("fingerprint".into(), json!(fingerprint));
    if let Some(wait) = options.wait {
        body.insert("wait_seconds".into(), json!(seconds(wait, 0).min(600)));
    }
    if let Some(build_ttl) = options.build_ttl {
        body.insert("build_ttl_seconds".into(), json!(seconds(build_ttl, 1).min(3600)));
    }
    let mut call = Call::new("PUT", format!("/v1/templates/{}", segment(name)), Some(Value::Object(body)));
    call.extra_wait = options.wait.unwrap_or(SERVER_DEFAULT_WAIT);
    call
}

pub(crate) fn finalize(name: &str, fingerprint: &str, build_id: &str) -> Call {
    let target = format!("/v1/templates/{}/builds/{}/finalize", segment(name), segment(fingerprint));
    Call::new("POST", target, Some(json!({"build_id": build_id})))
}

pub(crate) fn abort(name: &str, fingerprint: &str, build_id: &str) -> Call {
    let target = format!("/v1/templates/{}/builds/{}/abort", segment(name), segment(fingerprint));
    Call::new("POST", target, Some(json!({"build_id": build_id})))
}

pub(crate) fn readyz() -> Call {
    let mut call = Call::new("GET", "/readyz".into(), None);
    call.retry_not_ready = false;
    call
}

/// The answer, or its error status as [`Error::Api`].
pub(crate) fn check(call: &Call, response: Response) -> Result<Response> {
    if response.status < 400 {
        return Ok(response);
    }
    let (mut code, mut message) = (
        format!("http_{}", response.status),
        format!("pgleased answered {} to {} {}", response.status, call.method, call.target),
    );
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&response.body)
        && let Some(Value::Object(error)) = body.get("error")
    {
        if let Some(Value::String(text)) = error.get("code") {
            code = text.clone();
        }
        if let Some(Value::String(text)) = error.get("message") {
            message = text.clone();
        }
    }
    Err(Error::Api(ApiError {
        status: response.status,
        code: Code::parse(&code),
        message,
        retry_after: response.retry_after,
    }))
}

/// The JSON body as `T`.
pub(crate) fn decode<T: DeserializeOwned>(call: &Call, response: Response) -> Result<T> {
    serde_json::from_slice(&response.body)
        .map_err(|error| Error::Protocol(format!("{} {}: {error}", call.method, call.target)))
}

pub(crate) fn decode_ensured(call: &Call, response: Response) -> Result<Ensured> {
    let wire: EnsuredWire = decode(call, response)?;
    match (wire.state.as_str(), wire.build) {
        ("build", Some(build)) => Ok(Ensured::Build(wire.template, build)),
        ("ready", _) => Ok(Ensured::Ready(wire.template)),
        (state, _) => Err(Error::Protocol(format!("{} {}: state {state:?}", call.method, call.target))),
    }
}

/// A reset refused because the server has no such endpoint becomes [`Error::ResetUnsupported`].
pub(crate) fn reset_error(error: Error) -> Error {
    match &error {
        Error::Api(api) if matches!(api.code, Code::NotFound | Code::MethodNotAllowed) => Error::ResetUnsupported,
        _ => error,
    }
}

/// After `error`: how long to pause before asking again, or `None` to give up. Only
/// `503 not_ready` (pgleased starting, or a standby) is asked again, until `give_up_at`.
pub(crate) fn retry_pause(error: &Error, give_up_at: Instant) -> Option<Duration> {
    match error {
        Error::Api(ApiError { status: 503, code: Code::NotReady, retry_after, .. }) => {
            let pause =
                retry_after.unwrap_or(Duration::from_secs(1)).clamp(Duration::from_millis(200), Duration::from_secs(5));
            (Instant::now() + pause < give_up_at).then_some(pause)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(call: &Call) -> Value {
        serde_json::from_slice(call.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn acquire_sends_only_what_was_given() {
        let call = acquire("app", &AcquireOptions::new());
        assert_eq!((call.method, call.target.as_str(), body(&call)), ("POST", "/v1/templates/app/leases", json!({})));
        let options = AcquireOptions::new()
            .ttl(Duration::from_millis(200))
            .wait(Duration::from_secs(5))
            .owner("me")
            .label("suite", "e2e")
            .fingerprint("abc");
        let call = acquire("app", &options);
        assert_eq!(
            body(&call),
            json!({"ttl_seconds": 1, "wait_seconds": 5, "owner": "me", "labels": {"suite": "e2e"}, "fingerprint": "abc"})
        );
        assert_eq!(call.extra_wait, Duration::from_secs(5));
    }

    #[test]
    fn release_modes_are_queries() {
        assert_eq!(release("ab", ReleaseMode::Recycle).target, "/v1/leases/ab?mode=recycle");
        assert_eq!(release("ab", ReleaseMode::Reuse).target, "/v1/leases/ab?mode=reuse");
        assert_eq!(release("ab", ReleaseMode::Keep(None)).target, "/v1/leases/ab?mode=keep");
        assert_eq!(
            release("ab", ReleaseMode::Keep(Some(Duration::from_secs(90)))).target,
            "/v1/leases/ab?mode=keep&keep_seconds=90"
        );
    }

    #[test]
    fn errors_carry_the_servers_code_or_the_status() {
        let call = lease("ab");
        let answer = Response {
            status: 404,
            retry_after: None,
            close: false,
            body: br#"{"error":{"code":"unknown_lease","message":"no lease ab"}}"#.to_vec(),
        };
        let error = check(&call, answer).unwrap_err();
        assert_eq!((error.status(), error.code()), (Some(404), Some(&Code::UnknownLease)));
        assert_eq!(error.to_string(), "pgleased: no lease ab (404 unknown_lease)");
        let error = check(&call, Response { status: 502, retry_after: None, close: true, body: b"<html>".to_vec() })
            .unwrap_err();
        assert_eq!(error.code(), Some(&Code::Other("http_502".into())));
        assert!(
            reset_error(Error::Api(ApiError {
                status: 404,
                code: Code::NotFound,
                message: String::new(),
                retry_after: None
            }))
            .to_string()
            .contains("cannot reset")
        );
    }

    #[test]
    fn only_not_ready_is_asked_again_and_only_until_the_timeout() {
        let not_ready = |retry_after| {
            Error::Api(ApiError { status: 503, code: Code::NotReady, message: String::new(), retry_after })
        };
        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(retry_pause(&not_ready(Some(Duration::from_secs(2))), later), Some(Duration::from_secs(2)));
        assert_eq!(retry_pause(&not_ready(Some(Duration::from_secs(60))), later), Some(Duration::from_secs(5)));
        assert_eq!(retry_pause(&not_ready(None), Instant::now()), None);
        let exhausted =
            Error::Api(ApiError { status: 503, code: Code::PoolExhausted, message: String::new(), retry_after: None });
        assert_eq!(retry_pause(&exhausted, later), None);
    }
}
