#![allow(missing_docs)]
use bytes::Bytes;
#[tokio::test(flavor = "multi_thread")]
async fn smoke() -> anyhow::Result<()> {
    let app = harness::AppBuilder::from_manifest(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/spin.toml"))
        .variable("api_key", "k").kv_memory().build().await?;
    let t = std::time::Instant::now();
    let r = app.send(http::Request::post("/probe/kv/set?key=a").body(Bytes::from("v1"))?).await?;
    println!("{:?} {:?} {:?}", r.status(), r.body(), t.elapsed());
    for p in ["/probe/kv/get?key=a", "/probe/kv/keys", "/probe/headers", "/probe/var?name=greeting", "/probe/deep/x", "/exact", "/probe/kv/open?label=nope", "/probe/kv/open?label=extra", "/probe/time", "/probe/out?url=http%3A%2F%2Flocalhost%3A1%2F", "/probe/out?url=http%3A%2F%2F127.0.0.1%3A1%2F"] {
        let t = std::time::Instant::now();
        let r = app.send(http::Request::get(p).body(Bytes::new())?).await?;
        println!("{p} -> {:?} {:?} {:?}", r.status(), String::from_utf8_lossy(r.body()), t.elapsed());
    }
    Ok(())
}
