//! The stage function reads its invocation payload itself.
//!
//! The Lambda runtime deserializes a handler's payload through `serde_path_to_error`, which
//! records the path of every field it reads so that an error can name it. On a 10k-record MSK
//! event that bookkeeping cost more than a third on top of the parse (91 M instead of 58 M
//! instructions, measured with callgrind). [`ReadPayloadLayer`] sits between the runtime and
//! the handler: it reads the event with [`KafkaEvent::from_payload`] (plain `serde_json`; the
//! path is computed on the error path only), keeps the result for the handler under the
//! request id, and hands the runtime's own deserializer a `null` body instead of the event.
//! The handler then takes its event with [`Payloads::take`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use deltasink::kafka::{EventError, KafkaEvent};
use lambda_runtime::LambdaInvocation;
use lambda_runtime::tower::{Layer, Service};

/// Events read by the layer, waiting for their handler, by request id.
#[derive(Clone, Default)]
pub struct Payloads(Arc<Mutex<HashMap<String, Result<KafkaEvent, EventError>>>>);

impl Payloads {
    fn put(&self, request_id: String, event: Result<KafkaEvent, EventError>) {
        self.lock().insert(request_id, event);
    }

    /// The event of `request_id` (each is taken once).
    pub fn take(&self, request_id: &str) -> Result<KafkaEvent, PayloadError> {
        match self.lock().remove(request_id) {
            Some(Ok(event)) => Ok(event),
            Some(Err(e)) => Err(PayloadError::Event(e)),
            None => Err(PayloadError::Missing(request_id.to_string())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Result<KafkaEvent, EventError>>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts
        // and removes), so a poisoned lock is still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error(transparent)]
    Event(EventError),
    #[error("no event was read for request {0} (the payload layer is not installed)")]
    Missing(String),
}

/// Installs [`ReadPayload`] around the runtime's handler service.
pub struct ReadPayloadLayer(pub Payloads);

impl<S> Layer<S> for ReadPayloadLayer {
    type Service = ReadPayload<S>;

    fn layer(&self, inner: S) -> ReadPayload<S> {
        ReadPayload {
            inner,
            payloads: self.0.clone(),
        }
    }
}

pub struct ReadPayload<S> {
    inner: S,
    payloads: Payloads,
}

/// What the runtime's deserializer gets instead of the event (the handler ignores it).
const PLACEHOLDER: &[u8] = b"null";

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for ReadPayload<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> S::Future {
        // A view of the body, not a copy: the event's base64 strings stay where they arrived.
        let event = KafkaEvent::from_payload(invocation.body.clone());
        self.payloads
            .put(invocation.context.request_id.clone(), event);
        invocation.body = bytes::Bytes::from_static(PLACEHOLDER);
        self.inner.call(invocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::{Ready, ready};

    /// Records the bodies the runtime's inner service would deserialize.
    #[derive(Clone, Default)]
    struct Inner(Arc<Mutex<Vec<bytes::Bytes>>>);

    impl Service<LambdaInvocation> for Inner {
        type Response = ();
        type Error = std::convert::Infallible;
        type Future = Ready<Result<(), Self::Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
            self.0.lock().unwrap().push(invocation.body);
            ready(Ok(()))
        }
    }

    fn invocation(request_id: &str, body: &'static [u8]) -> LambdaInvocation {
        let mut context = lambda_runtime::Context::default();
        context.request_id = request_id.to_string();
        LambdaInvocation {
            parts: http::Response::new(()).into_parts().0,
            body: bytes::Bytes::from_static(body),
            context,
        }
    }

    #[test]
    fn the_handler_gets_the_event_read_by_the_layer_and_the_runtime_a_placeholder() {
        let payloads = Payloads::default();
        let inner = Inner::default();
        let mut service = ReadPayloadLayer(payloads.clone()).layer(inner.clone());
        let good = br#"{"eventSource": "aws:kafka", "records": {"t-0": [{"topic": "t", "partition": 0, "offset": 7, "timestamp": 1700000000123, "value": "e30="}]}}"#;
        service.call(invocation("r1", good)).into_inner().unwrap();
        service
            .call(invocation(
                "r2",
                br#"{"records": {"t-0": [{"offset": 1}]}}"#,
            ))
            .into_inner()
            .unwrap();

        assert_eq!(*inner.0.lock().unwrap(), vec![PLACEHOLDER, PLACEHOLDER]);
        let event = payloads.take("r1").unwrap();
        assert_eq!(event.records["t-0"][0].offset, 7);
        assert_eq!(event.records["t-0"][0].timestamp, 1_700_000_000_123);
        let err = payloads.take("r2").unwrap_err().to_string();
        assert!(
            err.contains("records.t-0[0]") && err.contains("partition"),
            "{err}"
        );
        // Each event is handed over once.
        assert!(matches!(payloads.take("r1"), Err(PayloadError::Missing(_))));
    }
}
