//! `harness bench`: in-process latency and throughput of one request shape, with no network in the way.

use crate::app::AppBuilder;
use crate::exit_codes;
use anyhow::Context as _;
use bytes::Bytes;
use clap::Args;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Measure in-process request latency (p50/p90/p99) and throughput against memory-backed stores.
///
/// Every request gets a fresh instance, exactly as under `up`; only the socket is missing.
#[derive(Debug, Args)]
pub struct BenchCommand {
    /// The application manifest (or its directory).
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub from: PathBuf,
    /// The request target: path and query.
    #[arg(long, default_value = "/probe/kv/incr?key=bench")]
    pub path: String,
    /// The method.
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// A request body.
    #[arg(long, default_value = "")]
    pub body: String,
    /// Measured requests.
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// Unmeasured requests first.
    #[arg(long, default_value_t = 200)]
    pub warmup: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Set an application variable (repeatable).
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
}

/// Latency percentiles of a run.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
    /// Requests per second over the measured run.
    pub rps: f64,
}

/// The `q`-quantile (0..=1) of sorted samples, nearest-rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl BenchCommand {
    /// Builds the app, warms up, measures, prints one summary line.
    ///
    /// # Errors
    /// Build errors, or a request without an answer or with a status ≥ 400.
    pub fn execute(self) -> anyhow::Result<i32> {
        let rt = super::runtime()?;
        let manifest = super::manifest_path(&self.from);
        let s = rt.block_on(async {
            let app = AppBuilder::from_manifest(&manifest)
                .variable_flags(&self.variables)
                .kv_memory()
                .max_concurrency(u32::try_from(self.concurrency.max(1)).unwrap_or(u32::MAX))
                .build()
                .await
                .with_context(|| format!("cannot load {}", manifest.display()))?;
            let (method, path, body) = (self.method.clone(), self.path.clone(), Bytes::from(self.body.clone()));
            let one = move |app: crate::App| {
                let req = http::Request::builder().method(method.as_str()).uri(path.as_str()).body(body.clone());
                async move {
                    let req = req.context("invalid --method/--path")?;
                    let t = Instant::now();
                    let resp = app.send(req).await?;
                    anyhow::ensure!(resp.status().as_u16() < 400, "status {}", resp.status());
                    anyhow::Ok(t.elapsed())
                }
            };
            for _ in 0..self.warmup {
                one(app.clone()).await?;
            }
            let per_worker = self.requests.div_ceil(self.concurrency.max(1));
            let started = Instant::now();
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..self.concurrency.max(1) {
                let app = app.clone();
                let one = one.clone();
                tasks.spawn(async move {
                    let mut samples = Vec::with_capacity(per_worker);
                    for _ in 0..per_worker {
                        samples.push(one(app.clone()).await?);
                    }
                    anyhow::Ok(samples)
                });
            }
            let mut samples = Vec::new();
            while let Some(r) = tasks.join_next().await {
                samples.extend(r.context("bench worker panicked")??);
            }
            let elapsed = started.elapsed();
            samples.sort();
            anyhow::Ok(Summary {
                p50: quantile(&samples, 0.50),
                p90: quantile(&samples, 0.90),
                p99: quantile(&samples, 0.99),
                max: samples.last().copied().unwrap_or_default(),
                rps: samples.len() as f64 / elapsed.as_secs_f64(),
            })
        })?;
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{} {} x{} (concurrency {}): p50 {:.0} µs  p90 {:.0} µs  p99 {:.0} µs  max {:.0} µs  {:.0} req/s",
            self.method,
            self.path,
            self.requests,
            self.concurrency,
            us(s.p50),
            us(s.p90),
            us(s.p99),
            us(s.max),
            s.rps
        );
        Ok(exit_codes::SUCCESS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_micros(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_micros(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
