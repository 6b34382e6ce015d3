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
/// Instances are reused as under `up` (and Spin 4); only the socket is missing. With the defaults it measures the
/// production interface rejecting an unsigned call (a signed `000001`), with a throw-away `access_keys` when none is
/// given.
#[derive(Debug, Args)]
pub struct BenchCommand {
    /// The application manifest (or its directory).
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub from: PathBuf,
    /// The request target: path and query.
    #[arg(long, default_value = "/produce")]
    pub path: String,
    /// The method.
    #[arg(long, default_value = "POST")]
    pub method: String,
    /// A request body.
    #[arg(long, default_value = "{}")]
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
    /// Requests one instance serves, as `up --max-instance-reuse-count` (1 with a concurrent count of 1: a fresh
    /// instance per request).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_instance_reuse_count: u64,
    /// Requests one instance serves at once, as `up --max-instance-concurrent-reuse-count`.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_instance_concurrent_reuse_count: u64,
}

/// The variable the production interface cannot start without; bench supplies a throw-away value when the manifest
/// declares it and neither `--variable` nor the environment sets it.
const KEY_VARIABLE: &str = "access_keys";

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
        let mut variables = self.variables.clone();
        let declared = crate::manifest::Manifest::from_file(&manifest)
            .map(|m| m.variables.contains_key(KEY_VARIABLE))
            .unwrap_or(false);
        let given = variables.iter().any(|v| v.starts_with(&format!("{KEY_VARIABLE}=")))
            || std::env::var_os(format!("SPIN_VARIABLE_{}", KEY_VARIABLE.to_uppercase())).is_some();
        if declared && !given {
            variables.push(format!("{KEY_VARIABLE}={}", uuid::Uuid::new_v4().simple()));
        }
        let s = rt.block_on(async {
            let app = AppBuilder::from_manifest(&manifest)
                .variable_flags(&variables)
                .kv_memory()
                .max_concurrency(u32::try_from(self.concurrency.max(1)).unwrap_or(u32::MAX))
                .max_instance_reuse_count(usize::try_from(self.max_instance_reuse_count).unwrap_or(usize::MAX))
                .max_instance_concurrent_reuse_count(
                    usize::try_from(self.max_instance_concurrent_reuse_count).unwrap_or(usize::MAX),
                )
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
            "{} {} x{} (concurrency {}, reuse {}/{}): p50 {:.0} µs  p90 {:.0} µs  p99 {:.0} µs  max {:.0} µs  {:.0} req/s",
            self.method,
            self.path,
            self.requests,
            self.concurrency,
            self.max_instance_reuse_count,
            self.max_instance_concurrent_reuse_count,
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
