//! `harness sign`: print a correctly signed marketplace request as a curl command line, like the seller center's
//! debug tool.
//!
//! ```text
//! harness sign v2 --key K --url http://127.0.0.1:3000/produce --activity newInstance [--field k=v …]
//! harness sign v2 --key K --url http://127.0.0.1:3000/produce --body '{"activity":"queryInstance",…}'
//! harness sign v1 --key K --url http://127.0.0.1:3000/produce --activity newInstance
//! harness sign kit --key K --url http://127.0.0.1:3000/produce --name tenantSync
//! ```
//!
//! The timestamp and nonce are fresh unless `--timestamp` / `--nonce` pin them. The key is never printed.

use crate::exit_codes::{self, UsageError};
use clap::{Args, Subcommand};
use koogallery_core::marketplace::{Marketplace, fresh_nonce, fresh_uuid, samples, v1_time_stamp};
use koogallery_core::ports::system_now_ms;
use koogallery_core::wire::time::{Precision, format_compact_utc};
use serde_json::{Map, Value};

/// Print a correctly signed marketplace request as a curl command line.
#[derive(Debug, Args)]
pub struct SignCommand {
    /// The signing scheme.
    #[command(subcommand)]
    pub scheme: SignScheme,
}

/// Options every scheme shares.
#[derive(Args)]
pub struct CommonSignArgs {
    /// The access key (basic-interface key for v2/v1, kit key for kit). Also read from KOOGALLERY_KEY.
    #[arg(long, env = "KOOGALLERY_KEY", hide_env_values = true)]
    pub key: String,
    /// The production URL, e.g. http://127.0.0.1:3000/produce.
    #[arg(long)]
    pub url: String,
    /// Sign with this timestamp instead of now (v2/kit: ms since the epoch; v1: yyyyMMddHHmmssSSS).
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Sign with this nonce instead of a fresh one (v2/kit).
    #[arg(long)]
    pub nonce: Option<String>,
    /// Set or add a field of the sample: name=value, or name:=<json> for a raw JSON value (repeatable).
    #[arg(long = "field", value_name = "NAME=VALUE")]
    pub fields: Vec<String>,
}

impl std::fmt::Debug for CommonSignArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonSignArgs")
            .field("key", &"[REDACTED]")
            .field("url", &self.url)
            .field("timestamp", &self.timestamp)
            .field("nonce", &self.nonce)
            .field("fields", &self.fields)
            .finish()
    }
}

/// The signing schemes.
#[derive(Debug, Subcommand)]
pub enum SignScheme {
    /// Basic interfaces V2: POST JSON, `signature`/`timestamp`/`nonce` query parameters.
    V2 {
        /// Shared options.
        #[command(flatten)]
        common: CommonSignArgs,
        /// The exact JSON body to send.
        #[arg(long, conflicts_with = "activity", required_unless_present = "activity")]
        body: Option<String>,
        /// Fill a sample body for this activity.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(samples::V2_ACTIVITIES))]
        activity: Option<String>,
    },
    /// Legacy V1: GET with query parameters and `authToken`.
    V1 {
        /// Shared options.
        #[command(flatten)]
        common: CommonSignArgs,
        /// The activity whose sample parameters to send.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(samples::V1_ACTIVITIES))]
        activity: String,
    },
    /// Joint-operation kit syncs: POST JSON with `x-sign`/`x-timestamp`/`x-nonce` headers.
    Kit {
        /// Shared options.
        #[command(flatten)]
        common: CommonSignArgs,
        /// The sync interface; `/produceAPI/v2/<name>` is appended to the URL unless it already ends with it.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(samples::KIT_NAMES))]
        name: String,
        /// The exact JSON body to send instead of the sample.
        #[arg(long)]
        body: Option<String>,
    },
}

fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// Serialises a body as the marketplace sends it: compact, keys sorted.
fn sorted_json(body: &Map<String, Value>) -> String {
    String::from_utf8_lossy(&samples::encode(body)).into_owned()
}

/// The signer for `--key`.
fn marketplace(key: &str) -> Result<Marketplace, anyhow::Error> {
    Marketplace::from_key(key).ok_or_else(|| usage("--key must not be empty"))
}

impl SignCommand {
    /// Prints the curl line.
    ///
    /// # Errors
    /// A usage error for an empty key, a malformed `--field`, or a `--body` that is not JSON with `--field`.
    pub fn execute(self) -> anyhow::Result<i32> {
        println!("{}", self.render(system_now_ms())?);
        Ok(exit_codes::SUCCESS)
    }

    /// The curl line, signing at `now_ms` unless a timestamp is given.
    ///
    /// # Errors
    /// As [`SignCommand::execute`].
    pub fn render(&self, now_ms: u64) -> anyhow::Result<String> {
        let business_id = fresh_uuid();
        match &self.scheme {
            SignScheme::V2 { common, body, activity } => {
                let mp = marketplace(&common.key)?;
                let body = match (body, activity) {
                    (Some(b), _) if common.fields.is_empty() => b.clone(),
                    (Some(b), _) => {
                        let mut m: Map<String, Value> =
                            serde_json::from_str(b).map_err(|e| usage(format!("--body is not a JSON object: {e}")))?;
                        apply_fields(&mut m, &common.fields).map_err(usage)?;
                        sorted_json(&m)
                    }
                    (None, Some(a)) => {
                        let mut m = samples::documented_v2(a, &business_id)
                            .ok_or_else(|| usage(format!("no sample for activity {a}")))?;
                        apply_fields(&mut m, &common.fields).map_err(usage)?;
                        sorted_json(&m)
                    }
                    (None, None) => return Err(usage("give --body or --activity")),
                };
                let timestamp = common.timestamp.clone().unwrap_or_else(|| now_ms.to_string());
                let nonce = common.nonce.clone().unwrap_or_else(fresh_nonce);
                let (base, query) = split_url(&common.url);
                let query = mp.v2_query(query, body.as_bytes(), &timestamp, &nonce);
                let headers = vec![
                    ("Accept".to_owned(), "application/json".to_owned()),
                    ("Content-Type".to_owned(), "application/json;charset=utf8".to_owned()),
                ];
                Ok(curl_line("POST", &format!("{base}?{query}"), &headers, Some(&body)))
            }
            SignScheme::V1 { common, activity } => {
                let mp = marketplace(&common.key)?;
                let mut params = samples::documented_v1(activity, &business_id)
                    .ok_or_else(|| usage(format!("no sample for activity {activity}")))?;
                for f in &common.fields {
                    let (k, v) = f.split_once('=').ok_or_else(|| usage(format!("--field {f}: expected name=value")))?;
                    match params.iter_mut().find(|(name, _)| name == k) {
                        Some(p) => p.1 = v.to_owned(),
                        None => params.push((k.to_owned(), v.to_owned())),
                    }
                }
                let time_stamp = common.timestamp.clone().unwrap_or_else(|| v1_time_stamp(now_ms));
                let (base, _) = split_url(&common.url);
                let query = mp.v1_query(&params, &time_stamp);
                Ok(curl_line("GET", &format!("{base}?{query}"), &[], None))
            }
            SignScheme::Kit { common, name, body } => {
                let mp = marketplace(&common.key)?;
                let body = match body {
                    Some(b) if common.fields.is_empty() => b.clone(),
                    Some(b) => {
                        let mut m: Map<String, Value> =
                            serde_json::from_str(b).map_err(|e| usage(format!("--body is not a JSON object: {e}")))?;
                        apply_fields(&mut m, &common.fields).map_err(usage)?;
                        sorted_json(&m)
                    }
                    None => {
                        let body_ts = format_compact_utc(now_ms.saturating_add(8 * 3_600_000), Precision::Millis17);
                        let mut m = samples::documented_kit(name, &body_ts)
                            .ok_or_else(|| usage(format!("no sample for {name}")))?;
                        apply_fields(&mut m, &common.fields).map_err(usage)?;
                        sorted_json(&m)
                    }
                };
                let timestamp = common.timestamp.clone().unwrap_or_else(|| now_ms.to_string());
                let nonce = common.nonce.clone().unwrap_or_else(fresh_nonce);
                let (base, query) = split_url(&common.url);
                let suffix = format!("/produceAPI/v2/{name}");
                let mut url = if base.ends_with(&suffix) { base.to_owned() } else { format!("{base}{suffix}") };
                if !query.is_empty() {
                    url = format!("{url}?{query}");
                }
                let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
                headers.extend(
                    mp.kit_headers(body.as_bytes(), &timestamp, &nonce).into_iter().map(|(k, v)| (k.to_owned(), v)),
                );
                Ok(curl_line("POST", &url, &headers, Some(&body)))
            }
        }
    }
}

/// Splits `url` at `?` into the part before and the query (without `?`).
fn split_url(url: &str) -> (&str, &str) {
    let url = url.trim_end_matches('?');
    url.split_once('?').unwrap_or((url, ""))
}

/// Applies `name=value` (string value; a number if the sample field is a number) or `name:=<json>` overrides.
///
/// # Errors
/// The offending argument, if it has no `=` or its `:=` value is not JSON.
fn apply_fields(body: &mut Map<String, Value>, fields: &[String]) -> Result<(), String> {
    for f in fields {
        if let Some((k, raw)) = f.split_once(":=") {
            let v: Value = serde_json::from_str(raw).map_err(|e| format!("--field {f}: value is not JSON: {e}"))?;
            body.insert(k.to_owned(), v);
            continue;
        }
        let (k, v) = f.split_once('=').ok_or_else(|| format!("--field {f}: expected name=value or name:=json"))?;
        let value = match body.get(k) {
            Some(Value::Number(_)) => v.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(v)),
            _ => Value::from(v),
        };
        body.insert(k.to_owned(), value);
    }
    Ok(())
}

/// Quotes `s` for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A curl command line for the request.
fn curl_line(method: &str, url: &str, headers: &[(String, String)], body: Option<&str>) -> String {
    let mut line = format!("curl -sS -X {method} {}", shell_quote(url));
    for (k, v) in headers {
        line.push_str(&format!(" -H {}", shell_quote(&format!("{k}: {v}"))));
    }
    if let Some(b) = body {
        line.push_str(&format!(" --data-raw {}", shell_quote(b)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn fields_keep_number_types_and_accept_json() {
        let mut body = samples::documented_kit("tenantSync", "t").expect("sample");
        apply_fields(&mut body, &["flag=0".into(), "name=x".into(), "extra:=[1,2]".into()]).expect("valid");
        assert_eq!(body["flag"], Value::from(0));
        assert_eq!(body["name"], Value::from("x"));
        assert_eq!(body["extra"], serde_json::json!([1, 2]));
        assert!(apply_fields(&mut body, &["novalue".into()]).is_err());
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    fn render(args: &[&str]) -> String {
        let cli = Cli::try_parse_from(args).expect("parses");
        let Command::Sign(cmd) = cli.command else { panic!("not sign") };
        cmd.render(1_680_508_066_618).expect("renders")
    }

    const AK: &str = "1234567890abcdef1234567890abcdef";

    #[test]
    fn v2_sample_is_signed_and_sorted() {
        let line = render(&[
            "harness",
            "sign",
            "v2",
            "--key",
            AK,
            "--url",
            "http://h/produce",
            "--activity",
            "queryInstance",
            "--field",
            "instanceId=abc",
        ]);
        assert!(line.starts_with("curl -sS -X POST 'http://h/produce?signature="), "{line}");
        assert!(line.contains("&timestamp=1680508066618&nonce="), "{line}");
        assert!(
            line.contains(r#"--data-raw '{"activity":"queryInstance","instanceId":"abc","testFlag":"1"}'"#),
            "{line}"
        );
        assert!(!line.contains(AK));
        let cli = Cli::try_parse_from(["harness", "sign", "v1", "--key", AK, "--url", "u", "--activity", "upgrade"])
            .expect("parses");
        assert!(!format!("{cli:?}").contains(AK), "Debug must not show the key");
    }

    #[test]
    fn v1_and_kit_place_their_signatures() {
        let v1 =
            render(&["harness", "sign", "v1", "--key", AK, "--url", "http://h/produce", "--activity", "queryInstance"]);
        assert!(v1.contains("timeStamp=20230403074746618&authToken="), "{v1}");
        let kit = render(&[
            "harness",
            "sign",
            "kit",
            "--key",
            AK,
            "--url",
            "http://h/produce",
            "--name",
            "tenantSync",
            "--nonce",
            "N",
        ]);
        assert!(kit.contains("'http://h/produce/produceAPI/v2/tenantSync'"), "{kit}");
        assert!(kit.contains("-H 'x-timestamp: 1680508066618'") && kit.contains("-H 'x-nonce: N'"), "{kit}");
        assert!(kit.contains("-H 'x-sign: "), "{kit}");
    }
}
