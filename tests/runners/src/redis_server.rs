//! A throw-away `redis-server` for tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child on a free loopback port, without persistence; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`.
    ///
    /// # Errors
    /// `redis-server` is not installed or does not come up within 10 s.
    pub fn start() -> anyhow::Result<Self> {
        let port = free_port()?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start redis-server ({e}): apt-get install -y redis-server"))?;
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                anyhow::bail!("redis-server on port {port} exited at start ({status})");
            }
            if server.ping() && server.child.try_wait().ok().flatten().is_none() {
                return Ok(server);
            }
            anyhow::ensure!(Instant::now() < deadline, "redis-server on port {port} did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Deletes every key, so the next runner starts on fresh state.
    ///
    /// # Errors
    /// Redis is unreachable.
    pub fn flush(&self) -> anyhow::Result<()> {
        let mut conn = redis::Client::open(self.url())?.get_connection()?;
        redis::cmd("FLUSHALL").query::<()>(&mut conn)?;
        Ok(())
    }

    fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else { return false };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(500)) else { return false };
        redis::cmd("PING").query::<String>(&mut conn).is_ok_and(|p| p == "PONG")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
