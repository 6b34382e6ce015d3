//! Every host feature of the harness, proved through the `probe` component running in-process.
//!
//! Build the probe first: `cargo build --release --target wasm32-wasip2 -p probe`.

mod common;

use bytes::Bytes;
use common::{app, builder, call, enc, get};
use harness::app::BuildError;
use harness::kv::{KvOp, MemoryKv, OpMatch};
use harness::outbound::{OutboundHandler, OutboundOutcome};
use harness::{App, AppBuilder, VirtualClock};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime_wasi_http::p3::bindings::http::types::ErrorCode;

// ---------- key-value ----------

#[tokio::test(flavor = "multi_thread")]
async fn kv_set_get_exists_delete_keys_on_memory_store() {
    let kv = MemoryKv::new();
    let app = builder().kv(kv.clone()).build().await.expect("app");
    assert_eq!(call(&app, "POST", "/probe/kv/set?key=order%2F1", "{\"a\":1}").await, (200, "ok".into()));
    assert_eq!(call(&app, "POST", "/probe/kv/set?key=order%2F2", "two").await, (200, "ok".into()));
    assert_eq!(get(&app, "/probe/kv/get?key=order%2F1").await, (200, "{\"a\":1}".into()));
    assert_eq!(get(&app, "/probe/kv/exists?key=order%2F2").await, (200, "true".into()));
    assert_eq!(get(&app, "/probe/kv/keys").await, (200, "order/1\norder/2".into()));
    assert_eq!(get(&app, "/probe/kv/delete?key=order%2F2").await, (200, "ok".into()));
    assert_eq!(get(&app, "/probe/kv/exists?key=order%2F2").await, (200, "false".into()));
    assert_eq!(get(&app, "/probe/kv/get?key=order%2F2").await, (404, "missing".into()));

    // The test's handle sees exactly what the guest wrote, and every call the guest made.
    assert_eq!(kv.keys(), ["order/1"]);
    assert_eq!(kv.text("order/1").as_deref(), Some("{\"a\":1}"));
    let ops: Vec<KvOp> = kv.calls().iter().map(|c| c.op).collect();
    assert_eq!(
        ops,
        [KvOp::Set, KvOp::Set, KvOp::Get, KvOp::Exists, KvOp::GetKeys, KvOp::Delete, KvOp::Exists, KvOp::Get]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn seeded_data_is_visible_to_the_guest_and_state_persists_across_requests() {
    let kv = MemoryKv::new();
    kv.seed("counter", "41");
    let app = builder().kv(kv.clone()).build().await.expect("app");
    assert_eq!(get(&app, "/probe/kv/incr?key=counter").await, (200, "42".into()));
    assert_eq!(get(&app, "/probe/kv/incr?key=counter").await, (200, "43".into()));
    assert_eq!(kv.text("counter").as_deref(), Some("43"));
}

#[tokio::test(flavor = "multi_thread")]
async fn store_allow_list_gives_access_denied_and_unconfigured_label_no_such_store() {
    let app = app().await;
    assert_eq!(get(&app, "/probe/kv/open?label=default").await, (200, "opened".into()));
    // Not in the component's key_value_stores: AccessDenied, as Spin does.
    assert_eq!(get(&app, "/probe/kv/open?label=secret").await, (500, "kv error: access-denied".into()));
    // `deep` may only open `default`, so even the probe's own `extra` label is denied there.
    assert_eq!(get(&app, "/probe/deep/kv/open?label=extra").await, (500, "kv error: access-denied".into()));
    // Listed but no backend configured: NoSuchStore.
    assert_eq!(get(&app, "/probe/kv/open?label=extra").await, (500, "kv error: no-such-store".into()));
    // Configure it and it opens.
    let app = builder().kv_label("extra", MemoryKv::new()).build().await.expect("app");
    assert_eq!(get(&app, "/probe/kv/open?label=extra").await, (200, "opened".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_build_rejects_a_store_label_without_backend() {
    let err = builder().strict(true).build().await.expect_err("extra is not configured");
    assert!(matches!(&err, BuildError::UndefinedStore { label, .. } if label == "extra"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_failure_on_the_nth_operation_reaches_the_guest_as_other() {
    let kv = MemoryKv::new();
    let app = builder().kv(kv.clone()).build().await.expect("app");
    kv.fail_nth(2, KvOp::Set);
    assert_eq!(call(&app, "POST", "/probe/kv/set?key=a", "1").await, (200, "ok".into()));
    assert_eq!(
        call(&app, "POST", "/probe/kv/set?key=b", "2").await,
        (500, "kv error: other: injected failure on set".into())
    );
    assert_eq!(kv.value("b"), None, "a failed set writes nothing");
    assert_eq!(call(&app, "POST", "/probe/kv/set?key=b", "2").await, (200, "ok".into()), "a rule fires once");

    // `Any` counts every kind: incr = get (1st) + set (2nd) → the set fails.
    kv.fail_nth(2, OpMatch::Any);
    assert_eq!(get(&app, "/probe/kv/incr?key=n").await, (500, "kv error: other: injected failure on set".into()));
    assert!(kv.calls().last().is_some_and(|c| c.failed && c.op == KvOp::Set));
}

#[tokio::test(flavor = "multi_thread")]
async fn file_store_survives_an_app_rebuild() {
    let dir = common::temp_dir("file-kv");
    let rc = dir.join("runtime-config.toml");
    std::fs::write(&rc, "[key_value_store.default]\ntype = \"spin\"\npath = \"data/default.db\"\n").expect("rc");
    // Not `common::builder()`: its `kv_memory()` would take precedence over the runtime config.
    let build = || {
        AppBuilder::from_manifest(common::manifest())
            .variable("api_key", "k")
            .env_vars(Vec::<(String, String)>::new())
            .runtime_config_file(&rc)
    };
    let app = build().build().await.expect("app");
    assert!(app.memory_kv("default").is_none(), "default is the file store");
    assert_eq!(call(&app, "POST", "/probe/kv/set?key=kept", "across restarts").await.0, 200);
    drop(app);
    assert!(dir.join("data/default.db").is_file());

    let app = build().build().await.expect("rebuilt app");
    assert_eq!(get(&app, "/probe/kv/get?key=kept").await, (200, "across restarts".into()));
    drop(app);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn state_dir_moves_the_default_store_file() {
    let dir = common::temp_dir("state-dir");
    let app = AppBuilder::from_manifest(common::manifest())
        .variable("api_key", "k")
        .env_vars(Vec::<(String, String)>::new())
        .default_store_file(true)
        .state_dir(dir.join("state"))
        .build()
        .await
        .expect("app");
    assert_eq!(call(&app, "POST", "/probe/kv/set?key=k", "v").await.0, 200);
    drop(app);
    assert!(dir.join("state").join(harness::kv::STORE_FILE_NAME).is_file(), "the store lives in the state dir");
    let _ = std::fs::remove_dir_all(dir);
}

/// Spin answers its well-known endpoints before routing, for any method (checked against `spin up` 4.1).
#[tokio::test(flavor = "multi_thread")]
async fn spin_well_known_endpoints_answer_before_routing() {
    let app = common::app().await;
    for method in ["GET", "POST"] {
        assert_eq!(call(&app, method, "/.well-known/spin/health", "").await, (200, "OK".into()));
    }
    let (status, info) = get(&app, "/.well-known/spin/info").await;
    assert_eq!(status, 200);
    assert_eq!(info, "{\n  \"name\": \"probe-app\",\n  \"version\": \"0.1.0\"\n}");
    assert_eq!(get(&app, "/.well-known/spin/other").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn up_default_store_is_a_file_under_the_manifest_dir() {
    let dir = common::temp_dir("default-store");
    let manifest = std::fs::read_to_string(common::manifest()).expect("manifest");
    let probe = common::probe_wasm().canonicalize().expect("probe path");
    let manifest = manifest.replace("../../../target/wasm32-wasip2/release/probe.wasm", &probe.display().to_string());
    std::fs::write(dir.join("spin.toml"), manifest).expect("write manifest");
    let build = || {
        AppBuilder::from_manifest(dir.join("spin.toml"))
            .variable("api_key", "k")
            .env_vars(Vec::<(String, String)>::new())
            .default_store_file(true)
    };
    let app = build().build().await.expect("app");
    assert_eq!(call(&app, "POST", "/probe/kv/set?key=k", "v").await.0, 200);
    drop(app);
    assert!(dir.join(harness::app::DEFAULT_STORE_FILE).is_file());
    let app = build().build().await.expect("app again");
    assert_eq!(get(&app, "/probe/kv/get?key=k").await, (200, "v".into()));
    drop(app);
    let _ = std::fs::remove_dir_all(dir);
}

/// A `redis-server` child process on a free port, killed on drop.
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_redis() -> RedisServer {
    let port = common::free_port();
    let child = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .stdout(std::process::Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => panic!("cannot start redis-server ({e}): install redis-server (apt-get install -y redis-server)"),
    };
    let server = RedisServer { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = [0u8; 16];
            if s.write_all(b"PING\r\n").await.is_ok()
                && s.read(&mut buf).await.is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
            {
                return server;
            }
        }
        assert!(Instant::now() < deadline, "redis-server on port {port} did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_store_from_runtime_config_is_shared_between_apps() {
    let redis = start_redis().await;
    let dir = common::temp_dir("redis");
    let rc = dir.join("runtime-config.toml");
    std::fs::write(
        &rc,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{}\"\n[key_value_store.extra]\ntype = \"memory\"\n",
            redis.port
        ),
    )
    .expect("rc");
    let build = || {
        AppBuilder::from_manifest(common::manifest())
            .variable("api_key", "k")
            .env_vars(Vec::<(String, String)>::new())
            .runtime_config_file(&rc)
            .strict(true)
    };
    let node_a = build().build().await.expect("node a");
    let node_b = build().build().await.expect("node b");
    assert_eq!(call(&node_a, "POST", "/probe/kv/set?key=tenant%2F1", "redis value").await, (200, "ok".into()));
    assert_eq!(get(&node_b, "/probe/kv/get?key=tenant%2F1").await, (200, "redis value".into()));
    assert_eq!(get(&node_b, "/probe/kv/exists?key=tenant%2F1").await, (200, "true".into()));
    assert_eq!(get(&node_a, "/probe/kv/incr?key=c").await, (200, "1".into()));
    assert_eq!(get(&node_b, "/probe/kv/incr?key=c").await, (200, "2".into()));
    assert_eq!(get(&node_a, "/probe/kv/keys").await, (200, "c\ntenant/1".into()));
    assert_eq!(get(&node_b, "/probe/kv/delete?key=tenant%2F1").await, (200, "ok".into()));
    assert_eq!(get(&node_a, "/probe/kv/get?key=tenant%2F1").await, (404, "missing".into()));
    // The runtime config's `memory` type backs `extra`.
    assert_eq!(get(&node_a, "/probe/kv/open?label=extra").await, (200, "opened".into()));

    // Redis going away is a guest-visible `other` error, not a hang or a trap.
    drop(redis);
    let started = Instant::now();
    let (status, body) = get(&node_a, "/probe/kv/get?key=c").await;
    assert_eq!(status, 500);
    assert!(body.starts_with("kv error: other: redis"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(15));
    let _ = std::fs::remove_dir_all(dir);
}

// ---------- variables ----------

#[tokio::test(flavor = "multi_thread")]
async fn variables_resolve_from_flag_env_default_and_templates() {
    let app = app().await;
    assert_eq!(get(&app, "/probe/var?name=region").await, (200, "cn-north-4".into()), "manifest default");
    assert_eq!(get(&app, "/probe/var?name=greeting").await, (200, "hello, cn-north-4!".into()), "mixed template");
    assert_eq!(get(&app, "/probe/var?name=api_key").await, (200, "test-key".into()), "flag");
    assert_eq!(get(&app, "/probe/var?name=component_name").await, (200, "probe".into()), "literal");

    let env = [("SPIN_VARIABLE_REGION", "eu-west-101"), ("SPIN_VARIABLE_GREETING", "hi"), ("OTHER", "x")];
    let app = builder().env_vars(env).build().await.expect("app");
    assert_eq!(get(&app, "/probe/var?name=greeting").await, (200, "hi, eu-west-101!".into()), "env provider");

    let app = builder().env_vars(env).variable("region", "ap-southeast-1").build().await.expect("app");
    assert_eq!(get(&app, "/probe/var?name=greeting").await, (200, "hi, ap-southeast-1!".into()), "flag beats env");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_sees_only_its_own_variables() {
    let app = app().await;
    // `mock_origin` is an application variable, but not one of the probe's component variables.
    let (status, body) = get(&app, "/probe/var?name=mock_origin").await;
    assert_eq!(status, 500);
    assert!(body.starts_with("variable error: undefined:"), "{body}");
    // `deep` does not list `greeting`.
    assert!(get(&app, "/probe/deep/var?name=greeting").await.1.starts_with("variable error: undefined:"));
    assert!(get(&app, "/probe/var?name=Bad-Name").await.1.starts_with("variable error: invalid-name:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_required_variable_is_named_strictly_at_build_and_undefined_at_get_otherwise() {
    let no_key = || AppBuilder::from_manifest(common::manifest()).env_vars(Vec::<(String, String)>::new()).kv_memory();
    let err = no_key().strict(true).build().await.expect_err("api_key is required");
    assert!(matches!(&err, BuildError::MissingVariables(v) if v == &["api_key".to_owned()]), "{err}");
    assert!(err.to_string().contains("api_key"));

    let app = no_key().build().await.expect("lenient build");
    assert_eq!(app.missing_variables(), ["api_key"]);
    let (status, body) = get(&app, "/probe/var?name=api_key").await;
    assert_eq!(status, 500);
    assert!(body.contains("undefined") && body.contains("api_key"), "{body}");
    // Variables that do not depend on it still work.
    assert_eq!(get(&app, "/probe/var?name=region").await, (200, "cn-north-4".into()));

    let err = builder().variable("no_such_variable", "x").build().await.expect_err("undeclared flag");
    assert!(err.to_string().contains("no_such_variable"), "{err}");
}

// ---------- outbound HTTP ----------

#[tokio::test(flavor = "multi_thread")]
async fn allowed_outbound_request_goes_out_for_real() {
    let upstream = common::upstream().await;
    let app = app().await;
    let url = format!("http://127.0.0.1:{}/hello", upstream.addr.port());
    let (status, body) = get(&app, &format!("/probe/out?url={}", enc(&url))).await;
    assert_eq!((status, body.as_str()), (200, "status=200\nupstream saw GET /hello"));
    assert_eq!(upstream.hits(), 1);
    let calls = app.outbound_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].outcome, OutboundOutcome::Sent);
    assert_eq!(calls[0].uri.to_string(), url);
    assert_eq!(calls[0].component, "probe");
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_outbound_request_fails_fast_with_the_wasi_error_and_sends_nothing() {
    let upstream = common::upstream().await;
    let app = app().await;
    // `localhost` is not `127.0.0.1`: not on the allow-list even though the server is up.
    for url in [
        format!("http://localhost:{}/x", upstream.addr.port()),
        "https://example.com/".to_owned(), // only *.example.com subdomains are allowed
        "http://shop.example.com/".to_owned(), // right host, wrong scheme
        "http://10.255.255.1:81/".to_owned(), // unroutable: would hang if it were attempted
    ] {
        let started = Instant::now();
        let (status, body) = get(&app, &format!("/probe/out?url={}", enc(&url))).await;
        assert_eq!((status, body.as_str()), (502, "outbound error: ErrorCode::HttpRequestDenied"), "{url}");
        assert!(started.elapsed() < Duration::from_millis(500), "{url} took {:?}", started.elapsed());
    }
    assert_eq!(upstream.hits(), 0);
    assert!(app.outbound_calls().iter().all(|c| c.outcome == OutboundOutcome::Denied));
    assert_eq!(app.outbound_calls().len(), 4);
}

/// Plays the marketplace and other backends in-process.
struct Mock;

#[async_trait::async_trait]
impl OutboundHandler for Mock {
    async fn handle(&self, request: http::Request<Bytes>) -> Result<http::Response<Bytes>, ErrorCode> {
        match request.uri().host() {
            Some("down.example.com") => Err(ErrorCode::ConnectionRefused),
            _ => {
                let body = format!(
                    "mock {} {} body={}",
                    request.method(),
                    request.uri().path(),
                    String::from_utf8_lossy(request.body())
                );
                Ok(http::Response::builder()
                    .status(201)
                    .body(Bytes::from(body))
                    .map_err(|_| ErrorCode::InternalError(None))?)
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mock_handler_answers_allowed_requests_and_the_recorder_sees_them() {
    let app = builder().outbound(Arc::new(Mock)).build().await.expect("app");
    // Allowed by "https://*.example.com".
    let (s, b) =
        call(&app, "POST", &format!("/probe/out?method=PUT&url={}", enc("https://api.example.com/v1/usage")), "42")
            .await;
    assert_eq!((s, b.as_str()), (200, "status=201\nmock PUT /v1/usage body=42"));
    // Allowed by the template "{{ mock_origin }}" = https://marketplace.mock.
    let (s, b) = get(&app, &format!("/probe/out?url={}", enc("https://marketplace.mock/order"))).await;
    assert_eq!((s, b.as_str()), (200, "status=201\nmock GET /order body="));
    // The handler's transport error reaches the guest.
    let (s, b) = get(&app, &format!("/probe/out?url={}", enc("https://down.example.com/"))).await;
    assert_eq!((s, b.as_str()), (502, "outbound error: ErrorCode::ConnectionRefused"));
    // Denied requests never reach the handler.
    let (s, _) = get(&app, &format!("/probe/out?url={}", enc("https://marketplace.mock:8443/"))).await;
    assert_eq!(s, 502);

    let calls = app.outbound_calls();
    let outcomes: Vec<_> = calls.iter().map(|c| c.outcome).collect();
    assert_eq!(
        outcomes,
        [OutboundOutcome::Handled, OutboundOutcome::Handled, OutboundOutcome::Handled, OutboundOutcome::Denied]
    );
    assert_eq!(calls[0].method, http::Method::PUT);
    assert_eq!(calls[0].body, Bytes::from("42"));
    assert_eq!(calls[0].headers.get("x-probe").map(|v| v.as_bytes()), Some(&b"1"[..]));
    app.recorder().clear();
    assert!(app.outbound_calls().is_empty());
}

// ---------- clock ----------

#[tokio::test(flavor = "multi_thread")]
async fn the_guest_wall_clock_is_the_virtual_clock() {
    let clock = VirtualClock::at_ms(1_680_508_066_618);
    let app = builder().clock(clock.clone()).build().await.expect("app");
    assert_eq!(get(&app, "/probe/time").await, (200, "1680508066618".into()));
    clock.advance_ms(60_001);
    assert_eq!(get(&app, "/probe/time").await, (200, "1680508126619".into()));
    clock.set_ms(0);
    assert_eq!(get(&app, "/probe/time").await, (200, "0".into()));

    // Without a virtual clock the guest sees the host's time.
    let app = common::app().await;
    let guest: u64 = get(&app, "/probe/time").await.1.parse().expect("ms");
    assert!(guest.abs_diff(koogallery_core::ports::system_now_ms()) < 5_000);
}

// ---------- routing and spin-* headers ----------

#[tokio::test(flavor = "multi_thread")]
async fn routing_exact_beats_wildcard_longest_prefix_wins_no_route_is_404() {
    let app = app().await;
    assert_eq!(get(&app, "/probe/anything/here").await, (200, "component=probe path-info=/anything/here".into()));
    assert_eq!(get(&app, "/probe").await, (200, "component=probe path-info=".into()));
    assert_eq!(get(&app, "/probe/deep").await, (200, "component=deep path-info=".into()));
    assert_eq!(get(&app, "/probe/deep/x/y").await, (200, "component=deep path-info=/x/y".into()));
    assert_eq!(get(&app, "/probe/exact").await, (200, "component=exact path-info=".into()));
    assert_eq!(get(&app, "/probe/exact/").await, (200, "component=exact path-info=".into()));
    assert_eq!(get(&app, "/probe/exactly").await, (200, "component=probe path-info=/exactly".into()));
    assert_eq!(get(&app, "/exact").await, (200, "component=exact path-info=".into()));
    assert_eq!(get(&app, "/exact/more").await.0, 404);
    assert_eq!(get(&app, "/probes").await.0, 404);
    assert_eq!(get(&app, "/").await.0, 404);
    // Same rules through serve(): which route and component answered.
    let served = app
        .serve(
            http::Request::get("/probe/deep/z").body(Bytes::new()).expect("req"),
            "10.0.0.1:1234".parse().expect("addr"),
        )
        .await
        .expect("served");
    assert_eq!((served.route.as_deref(), served.component.as_deref()), (Some("/probe/deep/..."), Some("deep")));
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_headers_are_appended_after_the_clients_own_as_spin_does() {
    let app = app().await;
    let req = http::Request::get("/probe/headers")
        .header("host", "seller.example.com")
        .header("spin-full-url", "spoofed")
        .body(Bytes::new())
        .expect("req");
    let served = app.serve(req, "192.0.2.7:50123".parse().expect("addr")).await.expect("served");
    let body = String::from_utf8_lossy(served.response.body()).into_owned();
    assert!(body.contains("spin-full-url: spoofed\n"), "the client's value is kept: {body}");
    assert!(body.contains("spin-full-url: http://seller.example.com/probe/headers\n"), "Spin's is added: {body}");
}

// ---------- concurrency and isolation ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_one_app_concurrently() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    let kv = MemoryKv::new();
    let app: App = builder().kv(kv.clone()).max_concurrency(8).build().await.expect("app");
    assert_send_sync(&app);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let app = app.clone();
        tasks.spawn(async move { get(&app, &format!("/probe/kv/incr?key=k{}", i % 8)).await });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.expect("task").0, 200);
        ok += 1;
    }
    assert_eq!(ok, 64);
    // 64 requests over 8 keys; get-then-set is not atomic, so only the key count is exact.
    assert_eq!(kv.keys().len(), 8);
}

// ---------- manifest checks ----------

#[tokio::test(flavor = "multi_thread")]
async fn missing_component_file_says_how_to_build_it() {
    let dir = common::temp_dir("missing-source");
    let text = std::fs::read_to_string(common::manifest()).expect("manifest");
    std::fs::write(dir.join("spin.toml"), text).expect("write");
    let err =
        AppBuilder::from_manifest(dir.join("spin.toml")).variable("api_key", "k").build().await.expect_err("no wasm");
    let msg = err.to_string();
    assert!(msg.contains("build the components first: cargo build --release --target wasm32-wasip2 -p probe"), "{msg}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_component_and_bad_template_are_rejected_before_loading() {
    let dir = common::temp_dir("bad-manifest");
    let text = std::fs::read_to_string(common::manifest()).expect("manifest");
    let write = |t: String| {
        std::fs::write(dir.join("spin.toml"), t).expect("write");
        dir.join("spin.toml")
    };
    let p = write(text.replace("component = \"deep\"", "component = \"nope\""));
    let err = AppBuilder::from_manifest(p).build().await.expect_err("unknown component");
    assert!(err.to_string().contains("`nope`"), "{err}");
    let p = write(text.replace("\"{{ greeting }}, {{region}}!\"", "\"{{ greeting }, {{region}}!\""));
    let err = AppBuilder::from_manifest(p).build().await.expect_err("bad template");
    assert!(err.to_string().contains("greeting"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
