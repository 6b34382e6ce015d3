//! Server-sent events passed through event by event, with the stream's usage guaranteed on its final data event.
//!
//! Every complete event leaves as soon as its blank line arrives, byte for byte as the upstream wrote it; only an
//! event still being written waits for its end. The filter reads each event's `data` for usage (wherever it is,
//! merged over the stream: streams report cumulative counts, and Anthropic-style streams split input and output
//! over two events). When the stream ends (at `data: [DONE]`, held back for this, or at the end of the body) and
//! its last data event did not already carry the usage at the top level as the gateway reads it, one more data event
//! is written before `[DONE]`: `{"id","object","created","model" of the last event, "choices":[] if it had
//! choices, "usage":{…}}` — the shape of OpenAI's own final usage chunk. A stream that reported no usage ends
//! unchanged.

use serde_json::{Map, Value};

use super::usage::{self, PartialUsage, UsageOutcome};

/// An event longer than this (without its blank line) stops the filter: it is passed on and the rest of the stream
/// passes unread, so a stream without event boundaries cannot hold memory.
const MAX_EVENT_BYTES: usize = 4 << 20;

/// The usage filter of one stream. Feed it with [`SseUsage::push`], end it with [`SseUsage::finish`].
#[derive(Debug, Default)]
pub struct SseUsage {
    pending: Vec<u8>,
    usage: PartialUsage,
    last_data: Option<Value>,
    /// `[DONE]` and anything after it, held until the usage event is written.
    held: Vec<u8>,
    crlf: Option<bool>,
    overflowed: bool,
    events: u64,
}

impl SseUsage {
    /// A filter for a new stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events have passed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Whether `data: [DONE]` has arrived: the stream is over even if the upstream keeps its connection open.
    pub fn done(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes the next chunk from the upstream and returns the bytes to send on now: every event it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.overflowed {
            return chunk.to_vec();
        }
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end).collect();
            self.take_event(event, &mut out);
        }
        if self.pending.len() > MAX_EVENT_BYTES {
            self.overflowed = true;
            out.append(&mut self.pending);
        }
        out
    }

    /// Ends a stream that finished normally: returns the last bytes to send (an unterminated last event, the usage
    /// event if one is needed, the held `[DONE]`) and the stream's usage.
    pub fn finish(&mut self) -> (Vec<u8>, UsageOutcome) {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let event = std::mem::take(&mut self.pending);
            self.take_event(event, &mut out);
        }
        let outcome = match self.usage.complete() {
            None => UsageOutcome::Missing,
            // After an overlong event the stream passed unread: an event added now could land inside it.
            Some(_) if self.overflowed => UsageOutcome::Missing,
            Some(u) if self.last_data.as_ref().is_some_and(|d| usage::reports_at_top_level(d, &u)) => {
                UsageOutcome::Reported(u)
            }
            Some(u) => {
                out.extend_from_slice(&self.usage_event(&u));
                UsageOutcome::Normalised(u)
            }
        };
        out.append(&mut self.held);
        (out, outcome)
    }

    /// The usage seen so far (for a stream that broke off: recorded, never billed).
    pub fn usage_so_far(&self) -> Option<usage::Usage> {
        self.usage.complete()
    }

    /// Bytes received but not yet passed on (an event cut off by the end of the stream).
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    fn take_event(&mut self, event: Vec<u8>, out: &mut Vec<u8>) {
        self.events += 1;
        if self.crlf.is_none() {
            self.crlf = Some(event.windows(2).any(|w| w == b"\r\n"));
        }
        if !self.held.is_empty() {
            self.held.extend_from_slice(&event);
            return;
        }
        match data_of(&event) {
            Some(data) if data.trim() == "[DONE]" => self.held = event,
            Some(data) => {
                if let Ok(document) = serde_json::from_str::<Value>(&data) {
                    if let Some(found) = usage::find(&document) {
                        self.usage.merge(found);
                    }
                    self.last_data = Some(document);
                }
                out.extend_from_slice(&event);
            }
            None => out.extend_from_slice(&event),
        }
    }

    fn usage_event(&self, u: &usage::Usage) -> Vec<u8> {
        let mut object = Map::new();
        if let Some(Value::Object(last)) = &self.last_data {
            for key in ["id", "object", "created", "model"] {
                if let Some(v) = last.get(key) {
                    object.insert(key.into(), v.clone());
                }
            }
            if last.contains_key("choices") {
                object.insert("choices".into(), Value::Array(Vec::new()));
            }
        }
        object.insert("usage".into(), usage::usage_object(None, u));
        let eol = if self.crlf == Some(true) { "\r\n" } else { "\n" };
        format!("data: {}{eol}{eol}", Value::Object(object)).into_bytes()
    }
}

/// The length of the first complete event in `buf` (up to and including its blank line), if there is one. Lines end
/// with `\n`, `\r\n` or `\r`; a `\r` at the very end may be the start of `\r\n`, so it waits for the next byte.
fn event_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    let mut line_empty = true;
    while i < buf.len() {
        let eol_len = match buf[i] {
            b'\n' => 1,
            b'\r' if i + 1 == buf.len() => return None,
            b'\r' if buf[i + 1] == b'\n' => 2,
            b'\r' => 1,
            _ => {
                line_empty = false;
                i += 1;
                continue;
            }
        };
        i += eol_len;
        if line_empty {
            return Some(i);
        }
        line_empty = true;
    }
    None
}

/// The event's `data` (its `data:` lines joined with `\n`, one leading space dropped), if it has any.
fn data_of(event: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(event);
    let mut data: Option<String> = None;
    for line in text.split(['\n', '\r']) {
        let value = if line == "data" {
            ""
        } else if let Some(v) = line.strip_prefix("data:") {
            v.strip_prefix(' ').unwrap_or(v)
        } else {
            continue;
        };
        match &mut data {
            Some(d) => {
                d.push('\n');
                d.push_str(value);
            }
            None => data = Some(value.to_owned()),
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<u8>, UsageOutcome) {
        let mut f = SseUsage::new();
        let outs = chunks.iter().map(|c| f.push(c)).collect();
        let (tail, outcome) = f.finish();
        (outs, tail, outcome)
    }

    #[test]
    fn openai_stream_with_usage_passes_unchanged() {
        let a: &[u8] = b"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n";
        let b: &[u8] = b"data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1,\"total_tokens\":3}}\n\n";
        let done: &[u8] = b"data: [DONE]\n\n";
        let (outs, tail, outcome) = run(&[a, b, done]);
        assert_eq!(outs, vec![a.to_vec(), b.to_vec(), Vec::new()]);
        assert_eq!(tail, done.to_vec(), "[DONE] is held to the end, then sent as it was");
        assert_eq!(outcome.status(), "reported");
    }

    #[test]
    fn events_leave_as_soon_as_complete_even_split_across_chunks() {
        let mut f = SseUsage::new();
        assert_eq!(f.push(b"data: {\"a\""), b"");
        assert_eq!(f.push(b":1}\n"), b"");
        assert_eq!(f.push(b"\ndata: {\"b\":2}\r"), b"data: {\"a\":1}\n\n");
        assert_eq!(f.push(b"\n\r\n: comment\n\n"), b"data: {\"b\":2}\r\n\r\n: comment\n\n");
    }

    #[test]
    fn anthropic_stream_gets_a_usage_event_at_the_end() {
        let start: &[u8] = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n";
        let delta: &[u8] =
            b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":25}}\n\n";
        let stop: &[u8] = b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        let (outs, tail, outcome) = run(&[start, delta, stop]);
        assert_eq!(outs.concat(), [start, delta, stop].concat());
        let text = String::from_utf8(tail).expect("utf8");
        let data: Value = serde_json::from_str(text.trim().strip_prefix("data: ").expect("data event")).expect("json");
        assert_eq!(data["usage"]["prompt_tokens"], 10);
        assert_eq!(data["usage"]["completion_tokens"], 25);
        assert_eq!(data["usage"]["total_tokens"], 35);
        assert_eq!(outcome.status(), "normalised");
    }

    #[test]
    fn usage_event_goes_before_done_in_openai_chunk_shape() {
        let a: &[u8] = b"data: {\"id\":\"c9\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"delta\":{}}],\"usage\":{\"input_tokens\":4,\"output_tokens\":5}}\r\n\r\n";
        let (_, tail, outcome) = run(&[a, b"data: [DONE]\r\n\r\n"]);
        let text = String::from_utf8(tail).expect("utf8");
        assert!(text.ends_with("\r\n\r\ndata: [DONE]\r\n\r\n"), "{text:?}");
        let first = text.split("\r\n\r\n").next().expect("event");
        let data: Value = serde_json::from_str(first.strip_prefix("data: ").expect("data")).expect("json");
        assert_eq!(data["id"], "c9");
        assert_eq!(data["object"], "chat.completion.chunk");
        assert_eq!(data["choices"], serde_json::json!([]));
        assert_eq!(data["usage"]["total_tokens"], 9);
        assert_eq!(outcome.status(), "normalised");
    }

    #[test]
    fn stream_without_usage_ends_unchanged() {
        let a: &[u8] = b"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n";
        let (outs, tail, outcome) = run(&[a, b"data: [DONE]\n\n"]);
        assert_eq!([outs.concat(), tail].concat(), [a, b"data: [DONE]\n\n"].concat());
        assert_eq!(outcome, UsageOutcome::Missing);
    }

    #[test]
    fn unterminated_last_event_is_still_sent() {
        let (outs, tail, _) = run(&[b"data: {\"x\":1}\n\ndata: [DONE]"]);
        assert_eq!(outs.concat(), b"data: {\"x\":1}\n\n");
        assert_eq!(tail, b"data: [DONE]");
    }

    #[test]
    fn a_stream_without_boundaries_cannot_hold_memory() {
        let mut f = SseUsage::new();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(f.push(&big).len(), big.len());
        assert_eq!(f.push(b"data: more\n\n"), b"data: more\n\n");
    }
}
