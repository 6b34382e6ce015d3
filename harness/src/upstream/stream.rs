//! Streamed answers: a channel-backed body fed by a task of its own, so each event leaves as its own HTTP chunk
//! when it is sent, `chunk_delay` after the previous one, and a `gated` stream can stop half way.

use super::behaviour::StreamPlan;
use super::{Body, Shared};
use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// What the producer sends the body: a chunk, or the error that breaks the body.
type Item = Result<Frame<Bytes>, std::io::Error>;

/// The `200 text/event-stream` response whose body `plan`'s events feed, recording into request `seq`.
pub(super) fn respond(shared: Arc<Shared>, seq: u64, plan: StreamPlan) -> http::Response<Body> {
    // Capacity 1: the producer runs at most one event ahead of the connection.
    let (tx, rx) = mpsc::channel::<Item>(1);
    tokio::spawn(produce(shared, seq, plan, tx));
    let frames = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut response = http::Response::new(StreamBody::new(frames).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/event-stream"));
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache"));
    response
}

/// Sends the events `chunk_delay` apart (waiting at the gate after the first if `gated`, breaking the body if
/// asked), recording when the first was sent and when the stream ended. Stops as soon as the client is gone (the
/// body dropped), so no task outlives its connection.
async fn produce(shared: Arc<Shared>, seq: u64, plan: StreamPlan, tx: mpsc::Sender<Item>) {
    for (i, event) in plan.events.into_iter().enumerate() {
        if i > 0 {
            tokio::select! {
                () = tokio::time::sleep(plan.chunk_delay) => {},
                () = tx.closed() => return,
            }
        }
        if plan.break_after == Some(i) {
            let broken = std::io::Error::other("mock upstream: stream broken on purpose (error-mid-stream)");
            if tx.send(Err(broken)).await.is_ok() {
                shared.update(seq, |r| r.finished_at = Some(Instant::now()));
            }
            return;
        }
        if tx.send(Ok(Frame::data(event))).await.is_err() {
            return;
        }
        if i == 0 {
            shared.update(seq, |r| r.first_event_at = Some(Instant::now()));
            if plan.gated {
                tokio::select! {
                    () = shared.pass_gate() => {},
                    () = tx.closed() => return,
                }
            }
        }
    }
    shared.update(seq, |r| r.finished_at = Some(Instant::now()));
}
