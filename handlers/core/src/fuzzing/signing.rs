//! Fuzz entry points for the signature verifiers: each scheme fed fuzzed parameters and bodies signed here.

use super::input::*;
use super::wire::{parse_kit, parse_v2};
use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::http;
use crate::signing::agents_jwt::{self, JwtError, JwtVerifier};
use crate::signing::apig::{self, ApigRequest, ApigSigner};
use crate::signing::body_sign;
use crate::signing::canonical_json::signing_candidates;
use crate::signing::error::AuthError;
use crate::signing::keys::SecretKey;
use crate::signing::kit::{KitAuth, KitVerifier};
use crate::signing::usage;
use crate::signing::v1::V1AuthToken;
use crate::signing::v2::{V2Auth, V2Verifier};
use crate::signing::window::TimestampWindow;
use crate::wire::v1::parse_v1_request;

/// V2 verifier on fuzzed parameters. Input: `now \n signature \n timestamp \n nonce \n body` (an empty line is an
/// absent parameter; `now` defaults to test-vectors §6.1's timestamp). Returns whether the request verified.
///
/// Oracles: never panics; an accepted request has its timestamp inside the window and its nonce echoed.
pub fn v2_verify(data: &[u8]) -> bool {
    let [now, signature, timestamp, nonce, body] = split::<5>(data);
    let now = clock(now, T0);
    let (signature, timestamp, nonce) = (text(signature), text(timestamp), text(nonce));
    let auth = V2Auth { signature: present(&signature), timestamp: present(&timestamp), nonce: present(&nonce) };
    let verifier = V2Verifier::new(ring(&[AK2, AK]), TimestampWindow::default());
    match verifier.verify(auth, body, now) {
        Ok(v) => {
            assert_eq!(v.nonce, nonce, "the verified nonce is not the one received");
            assert!(v.timestamp_ms.abs_diff(now) <= TimestampWindow::default().window_ms, "accepted a stale request");
            true
        }
        Err(_) => false,
    }
}

/// V2 sign → verify on a fuzzed body, then the V2 parser on it. Input: the body. Returns whether the body parsed
/// as a V2 request.
///
/// Oracles: a signature over the raw body, over the demo's canonical form and over every §4.1 candidate verifies
/// (under a rotated key ring) exactly when the body is a JSON object; a changed signature or another key is refused.
pub fn v2_signed(body: &[u8]) -> bool {
    let ts = T0.to_string();
    let signer = V2Verifier::new(ring(&[AK]), TimestampWindow::default());
    let verifier = V2Verifier::new(ring(&[AK2, AK]), TimestampWindow::default());
    let verify = |sig: &str| {
        verifier.verify(V2Auth { signature: Some(sig), timestamp: Some(&ts), nonce: Some(NONCE0) }, body, T0)
    };
    let raw_sig = signer.sign(body, &ts, NONCE0);
    let candidates = signing_candidates(body);
    match &candidates {
        Err(_) => {
            assert_eq!(verify(&raw_sig), Err(AuthError::NotJsonObject), "a non-object body was not refused as such");
            assert!(signer.sign_canonical(body, &ts, NONCE0).is_err(), "sign_canonical accepted a non-object body");
        }
        Ok(candidates) => {
            assert!(verify(&raw_sig).is_ok(), "a signature over the raw body does not verify");
            assert!(verify(&raw_sig.to_ascii_lowercase()).is_ok(), "a lower-case signature does not verify");
            let canonical = signer.sign_canonical(body, &ts, NONCE0);
            assert!(canonical.as_deref().is_ok_and(|s| verify(s).is_ok()), "sign_canonical does not verify");
            for c in candidates {
                assert!(verify(&signer.sign(c, &ts, NONCE0)).is_ok(), "a §4.1 candidate's signature does not verify");
            }
            assert_eq!(verify(&tamper_hex(&raw_sig)), Err(AuthError::BadSignature), "a changed signature verified");
            let other = V2Verifier::new(ring(&["another key"]), TimestampWindow::default()).sign(body, &ts, NONCE0);
            assert_eq!(verify(&other), Err(AuthError::BadSignature), "another key's signature verified");
        }
    }
    parse_v2(body)
}

/// Kit `x-sign` verifier on fuzzed headers. Input: `now \n x-sign \n x-timestamp \n x-nonce \n body`. Returns whether
/// the request verified.
///
/// Oracles: never panics; an accepted request is fresh and echoes its nonce.
pub fn kit_verify(data: &[u8]) -> bool {
    let [now, sign, timestamp, nonce, body] = split::<5>(data);
    let now = clock(now, T0);
    let (sign, timestamp, nonce) = (text(sign), text(timestamp), text(nonce));
    let auth = KitAuth { sign: present(&sign), timestamp: present(&timestamp), nonce: present(&nonce) };
    let verifier = KitVerifier::new(ring(&[AK2, AK]), TimestampWindow::default());
    match verifier.verify(auth, body, now) {
        Ok(v) => {
            assert_eq!(v.nonce, nonce, "the verified nonce is not the one received");
            assert!(v.timestamp_ms.abs_diff(now) <= TimestampWindow::default().window_ms, "accepted a stale request");
            true
        }
        Err(_) => false,
    }
}

/// Kit sign → verify on a fuzzed body, then every kit sync parser on it. Input: the body. Returns whether some sync
/// parsed it.
///
/// Oracles: as [`v2_signed`], for `x-sign`; then as [`parse_kit`].
pub fn kit_signed(body: &[u8]) -> bool {
    let ts = T0.to_string();
    let signer = KitVerifier::new(ring(&[AK]), TimestampWindow::default());
    let verifier = KitVerifier::new(ring(&[AK2, AK]), TimestampWindow::default());
    let verify =
        |sig: &str| verifier.verify(KitAuth { sign: Some(sig), timestamp: Some(&ts), nonce: Some(NONCE0) }, body, T0);
    let raw_sig = signer.sign(body, &ts, NONCE0);
    match signing_candidates(body) {
        Err(_) => assert_eq!(verify(&raw_sig), Err(AuthError::NotJsonObject), "a non-object body was not refused"),
        Ok(candidates) => {
            assert!(verify(&raw_sig).is_ok(), "an x-sign over the raw body does not verify");
            assert!(verify(&raw_sig.to_ascii_uppercase()).is_ok(), "an upper-case x-sign does not verify");
            let canonical = signer.sign_canonical(body, &ts, NONCE0);
            assert!(canonical.as_deref().is_ok_and(|s| verify(s).is_ok()), "sign_canonical does not verify");
            for c in &candidates {
                assert!(verify(&signer.sign(c, &ts, NONCE0)).is_ok(), "a candidate's x-sign does not verify");
            }
            assert_eq!(verify(&tamper_hex(&raw_sig)), Err(AuthError::BadSignature), "a changed x-sign verified");
        }
    }
    parse_kit(body)
}

/// V1 `authToken` verifier on a fuzzed raw query string (also the kit V1 header form, with the query's own
/// `authToken` as the header). Input: the query. Returns whether [`V1AuthToken::verify`] accepted it.
///
/// Oracles: never panics; a token is only ever accepted together with a `timeStamp`.
pub fn v1_verify(data: &[u8]) -> bool {
    let query = text(data);
    let v1 = V1AuthToken::new(ring(&[AK2, AK]));
    let params = http::parse_query(&query);
    let token = params.iter().find(|(k, _)| k == "authToken").map_or("", |(_, v)| v.as_str());
    let _ = v1.verify_params(&params, token);
    let ok = v1.verify(&query).is_ok();
    if ok {
        assert!(params.iter().any(|(k, v)| k == "timeStamp" && !v.is_empty()), "accepted without a timeStamp");
    }
    ok
}

/// V1 sign → verify on fuzzed parameters, then the V1 parser. Input: one `name=value` per line (decoded text; a
/// `timeStamp` is added first when none is given). Returns whether the signed request parsed as a V1 request.
///
/// Oracles: `signed_query` → `verify` accepts (or names the empty `timeStamp`); percent-encoding round-trips
/// (`http::parse_query` of the signed query gives back the parameters); `verify_params` accepts the same token.
pub fn v1_signed(data: &[u8]) -> bool {
    let input = text(data);
    let mut params: Vec<(String, String)> = input
        .split('\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (k, v) = line.split_once('=').unwrap_or((line, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    if !params.iter().any(|(k, _)| k == "timeStamp") {
        params.insert(0, ("timeStamp".to_owned(), V1_STAMP.to_owned()));
    }
    let time_stamp = params.iter().find(|(k, _)| k == "timeStamp").map_or("", |(_, v)| v.as_str()).to_owned();
    let refs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let signer = V1AuthToken::new(ring(&[AK]));
    let verifier = V1AuthToken::new(ring(&[AK2, AK]));
    let token = signer.sign(&refs, &time_stamp);
    let query = signer.signed_query(&refs, &time_stamp);
    let verified = verifier.verify(&query);
    if time_stamp.is_empty() {
        assert_eq!(verified, Err(AuthError::MissingTimestamp), "an empty timeStamp was not reported");
    } else {
        assert_eq!(verified, Ok(()), "signed_query does not verify: {query}");
    }
    let decoded = http::parse_query(&query);
    let mut expected: Vec<(String, String)> = params.iter().filter(|(k, _)| k != "authToken").cloned().collect();
    expected.push(("authToken".to_owned(), token.clone()));
    assert_eq!(decoded, expected, "percent-encoding does not round-trip through http::parse_query");
    if !time_stamp.is_empty() {
        let body_params: Vec<(String, String)> = decoded.iter().filter(|(k, _)| k != "authToken").cloned().collect();
        assert_eq!(verifier.verify_params(&body_params, &token), Ok(()), "verify_params refuses a signed token");
    }
    verified.is_ok() && parse_v1_request(&decoded).is_ok()
}

/// `Body-Sign` verifier on a fuzzed header, and header_value → verify on a fuzzed body. Input: `header \n body`.
/// Returns whether the fuzzed header verified.
///
/// Oracles: our own header over any body verifies under a ring holding the key; a changed body or a ring without the
/// key is refused.
pub fn body_sign(data: &[u8]) -> bool {
    let [header, body] = split::<2>(data);
    let keys = ring(&[AK2, AK]);
    let accepted = body_sign::verify(&text(header), body, &keys).is_ok();
    let own = body_sign::header_value(&SecretKey::new(AK), body);
    assert_eq!(body_sign::verify(&own, body, &keys), Ok(()), "our own Body-Sign does not verify");
    let mut changed = body.to_vec();
    changed.push(b' ');
    assert_eq!(body_sign::verify(&own, &changed, &keys), Err(AuthError::BadSignature), "a changed body verified");
    assert_eq!(body_sign::verify(&own, body, &ring(&[AK2])), Err(AuthError::BadSignature), "the wrong key verified");
    accepted
}

/// Usage-push `signature` verifier on fuzzed headers, and signature → verify on a fuzzed nonce and body. Input:
/// `now \n ts \n nonce \n signature \n body`. Returns whether the fuzzed headers verified.
///
/// Oracles: our own signature verifies with a fresh `ts`; a changed body is refused.
pub fn usage_sign(data: &[u8]) -> bool {
    let [now, ts, nonce, signature, body] = split::<5>(data);
    let now = clock(now, T_USAGE);
    let (ts, nonce, signature) = (text(ts), text(nonce), text(signature));
    let keys = ring(&[AK2, AK]);
    let window = TimestampWindow::default();
    let accepted = usage::verify(&keys, &ts, &nonce, &signature, body, now, window);
    if let Ok(ts_ms) = accepted {
        assert!(ts_ms.abs_diff(now) <= window.window_ms, "accepted a stale usage push");
    }
    let nonce = if nonce.is_empty() { Cow::Borrowed("n") } else { nonce };
    let own_ts = T_USAGE.to_string();
    let own = usage::signature(&SecretKey::new(AK), &own_ts, &nonce, body);
    let check = |b: &[u8]| usage::verify(&keys, &own_ts, &nonce, &own, b, T_USAGE, window);
    assert_eq!(check(body), Ok(T_USAGE), "our own usage signature does not verify");
    let mut changed = body.to_vec();
    changed.push(b'x');
    assert_eq!(check(&changed), Err(AuthError::BadSignature), "a changed usage body verified");
    accepted.is_ok()
}

/// Agents-gateway JWT verifier on a fuzzed `Authorization` header, and sign → verify on a fuzzed AK. Input:
/// `now \n authorization \n ak`. Returns whether the fuzzed header verified (under test-vectors §10's AK/SK).
///
/// Oracles: our own token verifies (with and without `Bearer `) and gives back the AK and times; it expires after
/// `exp` plus the skew; another SK is refused.
pub fn jwt(data: &[u8]) -> bool {
    let [now, header, ak] = split::<3>(data);
    let now = clock(now, T_USAGE);
    let verifier = JwtVerifier::new(vec![(JWT_AK.to_owned(), SecretKey::new(JWT_SK))]);
    let accepted = verifier.verify(&text(header), now);
    if let Ok(claims) = &accepted {
        assert_eq!(claims.api_key, JWT_AK, "accepted a token for another AK");
    }

    let ak = text(ak).into_owned();
    let sk = SecretKey::new(JWT_SK);
    let exp = T_USAGE + agents_jwt::DEFAULT_LIFETIME_MS;
    let token = agents_jwt::sign(&ak, &sk, T_USAGE, exp);
    let own = JwtVerifier::new(vec![(ak.clone(), sk)]);
    for header in [token.clone(), format!("Bearer {token}"), format!("bearer\t{token} ")] {
        let claims = own.verify(&header, T_USAGE);
        assert!(
            claims.as_ref().is_ok_and(|c| c.api_key == ak && c.exp_ms == Some(exp) && c.timestamp_ms == Some(T_USAGE)),
            "our own token does not verify to its claims: {claims:?}"
        );
    }
    let late = exp + agents_jwt::DEFAULT_SKEW_MS + 1;
    assert_eq!(own.verify(&token, late), Err(JwtError::Expired), "an expired token verified");
    let wrong = JwtVerifier::new(vec![(ak, SecretKey::new("demo-sk-0002"))]);
    assert_eq!(wrong.verify(&token, T_USAGE), Err(JwtError::BadSignature), "another SK verified");
    accepted.is_ok()
}

/// RFC 7230 `tchar`: what an HTTP header name may contain.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Percent-encodes every byte of `s` except `/` (lower-case hex), the most verbose spelling of the same text.
fn encode_all(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if keep_slash && b == b'/' {
            out.push('/');
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// API Gateway verifier and canonicaliser. Input: `now \n method \n path \n query \n header lines (Name: value) \n
/// empty line \n body`. Returns whether the request as given (its own `Authorization` and `X-Sdk-Date`, under
/// test-vectors §9.1's SK) verified.
///
/// Oracles, after stripping `Authorization` and `X-Sdk-Date` and signing: the request verifies; it still verifies
/// with header names in another case, with its path and query re-encoded byte by byte (the canonical request
/// depends on decoded text only), and the canonical request is the same; a changed body is refused unless the
/// payload is declared unsigned.
pub fn apig(data: &[u8]) -> bool {
    let [now, method, path, query, rest] = split::<5>(data);
    let now = clock(now, APIG_DATE_MS);
    let method: String = text(method).chars().filter(|c| is_tchar(*c)).collect();
    let method = if method.is_empty() { "GET".to_owned() } else { method };
    let path: String = text(path).chars().filter(|c| !matches!(c, '?' | '#')).collect();
    let path = path.trim_start_matches('/').to_owned();
    let query: String = text(query).chars().filter(|c| *c != '#').collect();
    let rest = text(rest);
    let (header_block, body) = rest.split_once("\n\n").unwrap_or((&rest, ""));
    let headers: Vec<(String, String)> = header_block
        .split('\n')
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            let name: String = name.chars().filter(|c| is_tchar(*c)).collect();
            (!name.is_empty()).then(|| (name, value.to_owned()))
        })
        .collect();
    let url = |p: &str, q: &str| {
        if q.is_empty() { format!("https://mkt.example.com/{p}") } else { format!("https://mkt.example.com/{p}?{q}") }
    };
    let lookup = |ak: &str| (ak == APIG_AK).then(|| SecretKey::new(APIG_SK));
    let window = TimestampWindow::default();

    let given =
        ApigRequest { method: method.clone(), url: url(&path, &query), headers, body: body.as_bytes().to_vec() };
    let accepted = apig::verify(&given, lookup, now, window).is_ok();

    let mut req = given;
    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case(apig::DATE_HEADER));
    ApigSigner::new(APIG_AK, SecretKey::new(APIG_SK)).sign(&mut req, APIG_DATE);
    let verify = |r: &ApigRequest| apig::verify(r, lookup, APIG_DATE_MS, window);
    assert_eq!(verify(&req), Ok(APIG_AK.to_owned()), "a signed request does not verify: {req:?}");

    let mut recased = req.clone();
    for (name, _) in &mut recased.headers {
        *name = name.to_ascii_uppercase();
    }
    assert_eq!(verify(&recased), Ok(APIG_AK.to_owned()), "header-name case changed the signature");

    let decoded_path = decode(&path);
    let requery: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            format!("{}={}", encode_all(&decode(k), false), encode_all(&decode(v), false))
        })
        .collect();
    let reencoded = ApigRequest { url: url(&encode_all(&decoded_path, true), &requery.join("&")), ..req.clone() };
    let signed: Vec<String> =
        req.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).filter(|n| n != "authorization").collect();
    assert_eq!(
        apig::canonical_request(&req, &signed),
        apig::canonical_request(&reencoded, &signed),
        "the canonical request depends on how the URL is percent-encoded"
    );
    assert_eq!(verify(&reencoded), Ok(APIG_AK.to_owned()), "a re-encoded URL does not verify");

    let unsigned_payload = req.header(apig::CONTENT_SHA256_HEADER).is_some_and(|v| v.trim() == "UNSIGNED-PAYLOAD");
    let mut changed = req;
    changed.body.push(b'x');
    if !unsigned_payload {
        assert_eq!(verify(&changed), Err(AuthError::BadSignature), "a changed body verified");
    }
    accepted
}

// ---------------------------------------------------------------------------------------------------------------
