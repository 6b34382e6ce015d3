//! Application and component variables, resolved as Spin resolves them.
//!
//! 1. An application variable (`[variables]`) takes its value from the first provider that has one, in `spin up`'s
//!    order: a `--variable name=value` flag (or [`crate::app::AppBuilder::variable`]), the environment variable
//!    `SPIN_VARIABLE_<UPPERCASE_NAME>`, the same name in the `.env` file of the working directory, then the
//!    manifest `default`. (Spin: the CLI's static provider is inserted first in crates/runtime-factors/src/build.rs,
//!    the env provider is always last among providers in crates/runtime-config/src/variables.rs, the default is the
//!    fallback of `ProviderResolver::resolve_variable` in crates/expressions/src/lib.rs.)
//! 2. Values are resolved on every `get`, not once: Spin's `spin:variables` `get` resolves through the providers
//!    each time (crates/factor-variables/src/host.rs), and its env provider calls `std::env::var` on each lookup
//!    (crates/variables-env/src/lib.rs). The `.env` file is read once, on the first name the environment lacks, and
//!    kept, as Spin caches it.
//! 3. A required variable with no value is *missing*. `harness up` refuses to start and names it; in a library app
//!    built without [`crate::app::AppBuilder::require_variables`], a component reading a variable whose template
//!    uses it gets `error::undefined`.
//! 4. A component sees only the names in its own `[component.x.variables]`, each a template over application
//!    variables ([`ComponentVariables`]). Anything else is `error::undefined`.
//!
//! Secret values never appear in logs or errors: only names do.

use crate::manifest::{Component, Manifest};
use crate::template::Template;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// Where an application variable's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VariableSource {
    /// `--variable` / [`crate::app::AppBuilder::variable`].
    Flag,
    /// `SPIN_VARIABLE_<NAME>`.
    Env,
    /// `SPIN_VARIABLE_<NAME>` in the `.env` file.
    DotEnv,
    /// The manifest default.
    Default,
}

/// A variable problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VariableError {
    /// A required application variable has no value.
    #[error(
        "required variable `{name}` has no value: pass --variable {name}=<value> or set SPIN_VARIABLE_{upper}",
        upper = name.to_uppercase()
    )]
    Missing {
        /// The variable name.
        name: String,
    },
    /// A `--variable` names a variable that `[variables]` does not declare.
    #[error("--variable {0}: not declared in the manifest's [variables]")]
    Undeclared(String),
    /// A `--variable` argument is not `name=value`.
    #[error("--variable {0:?}: expected name=value")]
    BadFlag(String),
    /// A provider failed (a non-Unicode environment value, an unreadable `.env`); the guest gets `provider`.
    #[error("variable `{name}`: {message}")]
    Provider {
        /// The variable name.
        name: String,
        /// What failed (never the value).
        message: String,
    },
}

/// The prefix of the environment variables that are Spin variable values (Spin's `DEFAULT_ENV_PREFIX`).
const ENV_PREFIX: &str = "SPIN_VARIABLE_";

/// An environment: the value of an environment variable by name, if set.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where `SPIN_VARIABLE_<NAME>` values come from.
#[derive(Clone)]
#[non_exhaustive]
pub enum EnvSource {
    /// The process environment, read on every lookup, then the `dotenv` file (read once, on the first miss).
    /// `harness up` uses `.env`, relative to the working directory, as `spin up` does.
    Process {
        /// The `.env` file; `None` reads none.
        dotenv: Option<PathBuf>,
    },
    /// A fixed map of lower-case names to values (see [`from_env`]), no `.env`: keeps tests hermetic.
    Fixed(BTreeMap<String, String>),
    /// A function from an environment variable name (`SPIN_VARIABLE_REGION`) to its value, called on every
    /// lookup, then the `dotenv` file as for [`EnvSource::Process`]: an environment a test can change while the app
    /// runs (tests may not mutate the real one). This is Spin's env provider with its `env_fetcher` replaced.
    Lookup {
        /// The environment.
        lookup: EnvLookup,
        /// The `.env` file; `None` reads none.
        dotenv: Option<PathBuf>,
    },
}

impl EnvSource {
    /// The process environment and `./.env`, as `spin up` reads them.
    pub fn process() -> Self {
        Self::Process { dotenv: Some(PathBuf::from(".env")) }
    }
}

impl std::fmt::Debug for EnvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: never print them.
        match self {
            Self::Process { dotenv } => f.debug_struct("Process").field("dotenv", dotenv).finish(),
            Self::Fixed(map) => f.debug_tuple("Fixed").field(&map.keys().collect::<Vec<_>>()).finish(),
            Self::Lookup { dotenv, .. } => f.debug_struct("Lookup").field("dotenv", dotenv).finish_non_exhaustive(),
        }
    }
}

/// The application variables' providers in Spin's order, asked on every lookup.
pub struct Providers {
    flags: BTreeMap<String, String>,
    env: EnvSource,
    /// The `.env` file's entries (`SPIN_VARIABLE_X` → value), read on the first miss, or why it could not be read.
    dotenv: OnceLock<Result<BTreeMap<String, String>, String>>,
    /// Declared variables and their manifest defaults.
    defaults: BTreeMap<String, Option<String>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("flags", &self.flags.keys().collect::<Vec<_>>())
            .field("env", &self.env)
            .field("declared", &self.defaults.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Providers {
    /// The value of application variable `name` now, and which provider gave it.
    ///
    /// # Errors
    /// [`VariableError::Missing`] when no provider has it and it has no default (or is not declared);
    /// [`VariableError::Provider`] when the environment or `.env` cannot be read.
    pub fn resolve(&self, name: &str) -> Result<(String, VariableSource), VariableError> {
        let Some(default) = self.defaults.get(name) else {
            return Err(VariableError::Missing { name: name.to_owned() });
        };
        if let Some(v) = self.flags.get(name) {
            return Ok((v.clone(), VariableSource::Flag));
        }
        let key = format!("{ENV_PREFIX}{}", name.to_ascii_uppercase());
        let provider_error = |message: String| VariableError::Provider { name: name.to_owned(), message };
        let (value, dotenv) = match &self.env {
            EnvSource::Fixed(map) => (map.get(name).cloned(), None),
            EnvSource::Lookup { lookup, dotenv } => (lookup(&key), dotenv.as_deref()),
            EnvSource::Process { dotenv } => match std::env::var(&key) {
                Ok(v) => (Some(v), None),
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(provider_error(format!("failed to resolve env var {key}: not valid Unicode")));
                }
                Err(std::env::VarError::NotPresent) => (None, dotenv.as_deref()),
            },
        };
        if let Some(v) = value {
            return Ok((v, VariableSource::Env));
        }
        if let Some(path) = dotenv {
            match self.dotenv.get_or_init(|| read_dotenv(path)) {
                Ok(entries) => {
                    if let Some(v) = entries.get(&key) {
                        return Ok((v.clone(), VariableSource::DotEnv));
                    }
                }
                Err(e) => return Err(provider_error(e.clone())),
            }
        }
        match default {
            Some(v) => Ok((v.clone(), VariableSource::Default)),
            None => Err(VariableError::Missing { name: name.to_owned() }),
        }
    }
}

/// Reads a `.env` file: `NAME=value` lines, `#` comments, an optional `export ` and quotes around the value. A
/// missing file is empty, as for Spin (whose `dotenvy` errors on a missing file are dropped). Variable expansion
/// (`${X}`) is not supported.
fn read_dotenv(path: &std::path::Path) -> Result<BTreeMap<String, String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_dotenv(&text).map_err(|line| format!("{}: line {line} is not NAME=value", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Parses `.env` text; the error is the 1-based number of the first malformed line (never its content: secrets).
fn parse_dotenv(text: &str) -> Result<BTreeMap<String, String>, usize> {
    let mut entries = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((name, value)) = line.split_once('=') else { return Err(i + 1) };
        let name = name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(i + 1);
        }
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            inner.replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            inner.to_owned()
        } else {
            value.split_once(" #").map_or(value, |(v, _)| v.trim_end()).to_owned()
        };
        entries.insert(name.to_owned(), value);
    }
    Ok(entries)
}

/// One component's variables: its `[component.x.variables]` templates, rendered on each [`ComponentVariables::get`]
/// through the app's [`Providers`].
#[derive(Debug, Clone)]
pub struct ComponentVariables {
    templates: BTreeMap<String, Template>,
    providers: Arc<Providers>,
}

impl ComponentVariables {
    /// The value of component variable `name` now; `None` if the component does not declare it.
    ///
    /// # Errors
    /// The [`VariableError`] of the first application variable the template uses that cannot be resolved.
    pub fn get(&self, name: &str) -> Option<Result<String, VariableError>> {
        let template = self.templates.get(name)?;
        Some(template.render(|v| self.providers.resolve(v).map(|(value, _)| value)))
    }
}

/// Parses a `name=value` flag.
///
/// # Errors
/// [`VariableError::BadFlag`] if there is no `=` or the name is empty.
pub fn parse_flag(s: &str) -> Result<(String, String), VariableError> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(VariableError::BadFlag(s.to_owned())),
    }
}

/// The environment variables that are Spin variable values: `SPIN_VARIABLE_FOO_BAR=x` → `("foo_bar", "x")`.
pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
    vars.into_iter()
        .filter_map(|(k, v)| k.strip_prefix(ENV_PREFIX).map(|name| (name.to_ascii_lowercase(), v)))
        .collect()
}

/// Application variable values, resolved from flags, environment and defaults when the app is built (for the
/// start-up checks, `allowed_outbound_hosts` and the log of sources), plus the [`Providers`] that components'
/// `get`s resolve through later.
#[derive(Clone)]
pub struct Resolver {
    values: BTreeMap<String, Result<(String, VariableSource), VariableError>>,
    providers: Arc<Providers>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: show names and sources only.
        let mut m = f.debug_map();
        for (name, v) in &self.values {
            match v {
                Ok((_, source)) => m.entry(name, source),
                Err(e) => m.entry(name, e),
            };
        }
        m.finish()
    }
}

impl Resolver {
    /// Resolves every application variable of `manifest`, with `env` as a fixed environment (no `.env`).
    ///
    /// `flags` are `--variable` values (highest priority); `env` maps lower-case names to values (see [`from_env`]).
    ///
    /// # Errors
    /// [`VariableError::Undeclared`] if a flag names an undeclared variable.
    pub fn new(
        manifest: &Manifest,
        flags: &BTreeMap<String, String>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, VariableError> {
        Self::with_env(manifest, flags, EnvSource::Fixed(env.clone()))
    }

    /// Resolves every application variable of `manifest` with `flags`, then `env`, then the defaults.
    ///
    /// # Errors
    /// [`VariableError::Undeclared`] if a flag names an undeclared variable.
    pub fn with_env(
        manifest: &Manifest,
        flags: &BTreeMap<String, String>,
        env: EnvSource,
    ) -> Result<Self, VariableError> {
        if let Some(name) = flags.keys().find(|k| !manifest.variables.contains_key(*k)) {
            return Err(VariableError::Undeclared(name.clone()));
        }
        let providers = Arc::new(Providers {
            flags: flags.clone(),
            env,
            dotenv: OnceLock::new(),
            defaults: manifest.variables.iter().map(|(name, decl)| (name.clone(), decl.default.clone())).collect(),
        });
        let values = manifest.variables.keys().map(|name| (name.clone(), providers.resolve(name))).collect();
        Ok(Self { values, providers })
    }

    /// The value of application variable `name`.
    ///
    /// # Errors
    /// [`VariableError::Missing`] for a required variable without a value (or an unknown name).
    pub fn value(&self, name: &str) -> Result<&str, VariableError> {
        match self.values.get(name) {
            Some(Ok((v, _))) => Ok(v),
            Some(Err(e)) => Err(e.clone()),
            None => Err(VariableError::Missing { name: name.to_owned() }),
        }
    }

    /// Where `name`'s value came from, if it has one.
    pub fn source(&self, name: &str) -> Option<VariableSource> {
        match self.values.get(name) {
            Some(Ok((_, s))) => Some(*s),
            _ => None,
        }
    }

    /// The required variables without a value, sorted.
    pub fn missing(&self) -> Vec<&str> {
        // Like Spin's start-up check (`ensure_required_variables_resolvable`): a variable without a default that no
        // provider can answer, for whatever reason. A provider error on a variable with a default shows at `get`.
        self.values
            .iter()
            .filter(|(name, v)| v.is_err() && matches!(self.providers.defaults.get(name.as_str()), Some(None) | None))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// A component's variables, resolved on each `get` through this resolver's providers.
    pub fn component_variables(&self, component: &Component) -> ComponentVariables {
        ComponentVariables { templates: component.variables.clone(), providers: Arc::clone(&self.providers) }
    }

    /// Renders a component's variables now: name → value, or the error of the first missing variable it uses.
    pub fn component_values(&self, component: &Component) -> BTreeMap<String, Result<String, VariableError>> {
        component
            .variables
            .iter()
            .map(|(name, template)| (name.clone(), template.render(|v| self.value(v).map(str::to_owned))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn manifest() -> Manifest {
        Manifest::parse(
            r#"
spin_manifest_version = 2
[application]
name = "t"
[variables]
key = { required = true, secret = true }
region = { default = "cn-north-4" }
[component.c]
source = "c.wasm"
[component.c.variables]
url = "https://{{ region }}.example.com/{{ key }}"
plain = "x"
"#,
            Path::new("spin.toml"),
            Path::new("."),
        )
        .expect("manifest")
    }

    #[test]
    fn priority_is_flag_then_env_then_default() {
        let m = manifest();
        let env = from_env([("SPIN_VARIABLE_REGION".to_owned(), "env".to_owned()), ("PATH".into(), "/bin".into())]);
        let none = BTreeMap::new();
        let r = Resolver::new(&m, &none, &env).expect("resolver");
        assert_eq!(r.value("region"), Ok("env"));
        assert_eq!(r.source("region"), Some(VariableSource::Env));
        let flags = BTreeMap::from([("region".to_owned(), "flag".to_owned())]);
        let r = Resolver::new(&m, &flags, &env).expect("resolver");
        assert_eq!(r.value("region"), Ok("flag"));
        let r = Resolver::new(&m, &none, &none).expect("resolver");
        assert_eq!(r.value("region"), Ok("cn-north-4"));
        assert_eq!(r.source("region"), Some(VariableSource::Default));
    }

    #[test]
    fn missing_required_is_named_and_poisons_only_templates_using_it() {
        let m = manifest();
        let none = BTreeMap::new();
        let r = Resolver::new(&m, &none, &none).expect("resolver");
        assert_eq!(r.missing(), ["key"]);
        let vals = r.component_values(&m.components["c"]);
        assert_eq!(vals["plain"], Ok("x".to_owned()));
        let err = vals["url"].clone().expect_err("uses key");
        assert!(err.to_string().contains("`key`") && err.to_string().contains("SPIN_VARIABLE_KEY"), "{err}");
        let flags = BTreeMap::from([("key".to_owned(), "s3cr3t".to_owned())]);
        let r = Resolver::new(&m, &flags, &none).expect("resolver");
        assert_eq!(r.component_values(&m.components["c"])["url"], Ok("https://cn-north-4.example.com/s3cr3t".into()));
        assert!(!format!("{r:?}").contains("s3cr3t"));
    }

    #[test]
    fn flags_must_be_declared_and_well_formed() {
        let m = manifest();
        let flags = BTreeMap::from([("nope".to_owned(), "x".to_owned())]);
        assert_eq!(Resolver::new(&m, &flags, &BTreeMap::new()).err(), Some(VariableError::Undeclared("nope".into())));
        assert_eq!(parse_flag("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_flag("novalue").is_err());
    }

    /// A fresh file under the temp dir with `text`.
    fn temp_file(tag: &str, text: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("harness-vars-{}-{tag}-{n}.env", std::process::id()));
        std::fs::write(&path, text).expect("write temp file");
        path
    }

    /// An environment the test can change after the resolver is built.
    fn live_env(dotenv: Option<PathBuf>) -> (Arc<std::sync::Mutex<BTreeMap<String, String>>>, EnvSource) {
        let env = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let seen = Arc::clone(&env);
        let lookup = Arc::new(move |k: &str| seen.lock().expect("env lock").get(k).cloned());
        (env, EnvSource::Lookup { lookup, dotenv })
    }

    #[test]
    fn a_get_sees_the_environment_as_it_is_now() {
        let m = manifest();
        let flags = BTreeMap::from([("key".to_owned(), "k".to_owned())]);
        let (env, source) = live_env(None);
        let r = Resolver::with_env(&m, &flags, source).expect("resolver");
        let vars = r.component_variables(&m.components["c"]);
        assert_eq!(vars.get("url"), Some(Ok("https://cn-north-4.example.com/k".to_owned())));
        // Changed after the app was built: the next get sees it, as Spin's env provider reads the environment on
        // every lookup.
        env.lock().expect("env lock").insert("SPIN_VARIABLE_REGION".into(), "eu-west-101".into());
        assert_eq!(vars.get("url"), Some(Ok("https://eu-west-101.example.com/k".to_owned())));
        env.lock().expect("env lock").remove("SPIN_VARIABLE_REGION");
        assert_eq!(vars.get("url"), Some(Ok("https://cn-north-4.example.com/k".to_owned())));
        assert_eq!(vars.get("plain"), Some(Ok("x".to_owned())));
        assert!(vars.get("region").is_none(), "not a component variable");
        // The build-time snapshot (start-up checks, allow-lists) does not move.
        env.lock().expect("env lock").insert("SPIN_VARIABLE_REGION".into(), "later".into());
        assert_eq!(r.value("region"), Ok("cn-north-4"));
        // A required variable that appears later resolves later.
        let (env, source) = live_env(None);
        let r = Resolver::with_env(&m, &BTreeMap::new(), source).expect("resolver");
        assert_eq!(r.missing(), ["key"]);
        let vars = r.component_variables(&m.components["c"]);
        assert!(matches!(vars.get("url"), Some(Err(VariableError::Missing { .. }))));
        env.lock().expect("env lock").insert("SPIN_VARIABLE_KEY".into(), "s3cr3t".into());
        assert_eq!(vars.get("url"), Some(Ok("https://cn-north-4.example.com/s3cr3t".to_owned())));
    }

    #[test]
    fn providers_are_asked_in_spins_order_flag_env_dotenv_default() {
        let m = manifest();
        let dotenv = temp_file("order", "# comment\nSPIN_VARIABLE_REGION=from-dotenv\nSPIN_VARIABLE_KEY=dotkey\n");
        let (env, source) = live_env(Some(dotenv.clone()));
        let flags = BTreeMap::from([("key".to_owned(), "flag".to_owned())]);
        let r = Resolver::with_env(&m, &flags, source).expect("resolver");
        let providers = &r.providers;
        assert_eq!(providers.resolve("key"), Ok(("flag".into(), VariableSource::Flag)), "flag beats .env");
        assert_eq!(providers.resolve("region"), Ok(("from-dotenv".into(), VariableSource::DotEnv)));
        env.lock().expect("env lock").insert("SPIN_VARIABLE_REGION".into(), "from-env".into());
        assert_eq!(providers.resolve("region"), Ok(("from-env".into(), VariableSource::Env)), "env beats .env");
        env.lock().expect("env lock").insert("SPIN_VARIABLE_KEY".into(), "env".into());
        assert_eq!(providers.resolve("key"), Ok(("flag".into(), VariableSource::Flag)), "flag beats env");
        // The .env file is read once, on the first miss, and kept (as Spin caches it).
        std::fs::write(&dotenv, "SPIN_VARIABLE_REGION=rewritten\n").expect("rewrite");
        env.lock().expect("env lock").clear();
        assert_eq!(providers.resolve("region"), Ok(("from-dotenv".into(), VariableSource::DotEnv)));
        // Nothing anywhere: the manifest default.
        let none = temp_file("none", "");
        let r = Resolver::with_env(&m, &BTreeMap::new(), live_env(Some(none.clone())).1).expect("resolver");
        assert_eq!(r.providers.resolve("region"), Ok(("cn-north-4".into(), VariableSource::Default)));
        assert_eq!(r.source("key"), None);
        // Undeclared names are never looked up.
        assert!(matches!(r.providers.resolve("nope"), Err(VariableError::Missing { .. })));
        let _ = std::fs::remove_file(dotenv);
        let _ = std::fs::remove_file(none);
    }

    #[test]
    fn dotenv_syntax_and_errors_without_values() {
        let parsed = parse_dotenv(
            "# c\n\nexport SPIN_VARIABLE_A=1\nSPIN_VARIABLE_B = \"two words\" \nSPIN_VARIABLE_C='x#y'\nSPIN_VARIABLE_D=v # note\nE=",
        )
        .expect("valid");
        assert_eq!(parsed["SPIN_VARIABLE_A"], "1");
        assert_eq!(parsed["SPIN_VARIABLE_B"], "two words");
        assert_eq!(parsed["SPIN_VARIABLE_C"], "x#y");
        assert_eq!(parsed["SPIN_VARIABLE_D"], "v");
        assert_eq!(parsed["E"], "");
        assert_eq!(parse_dotenv("A=1\nnot an assignment\n"), Err(2));
        // A missing file is empty; a malformed one is a provider error that names the line, never a value.
        assert_eq!(read_dotenv(Path::new("/nonexistent/harness/.env")), Ok(BTreeMap::new()));
        let bad = temp_file("bad", "SPIN_VARIABLE_KEY=s3cr3t\noops\n");
        let r = Resolver::with_env(&manifest(), &BTreeMap::new(), live_env(Some(bad.clone())).1).expect("resolver");
        let err = r.providers.resolve("region").expect_err("bad .env");
        assert!(matches!(err, VariableError::Provider { .. }), "{err:?}");
        assert!(err.to_string().contains("line 2") && !err.to_string().contains("s3cr3t"), "{err}");
        // A required variable no provider can answer is missing at start-up; one with a default is not.
        assert_eq!(r.missing(), ["key"]);
        assert!(!format!("{r:?}{:?}", r.providers).contains("s3cr3t"));
        let _ = std::fs::remove_file(bad);
    }
}
