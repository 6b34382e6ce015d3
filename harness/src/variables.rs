//! Application and component variables, resolved as Spin resolves them.
//!
//! 1. An application variable (`[variables]`) takes its value from, highest priority first: a `--variable
//!    name=value` flag (or [`crate::app::AppBuilder::variable`]), the environment variable
//!    `SPIN_VARIABLE_<UPPERCASE_NAME>`, then the manifest `default`.
//! 2. A required variable with no value is *missing*. `harness up` refuses to start and names it; in a library app
//!    built without [`crate::app::AppBuilder::require_variables`], a component reading a variable whose template
//!    uses it gets `error::undefined`.
//! 3. A component sees only the names in its own `[component.x.variables]`, each a template over application
//!    variables, rendered once when the app is built. Anything else is `error::undefined`.
//!
//! Secret values never appear in logs or errors: only names do.

use crate::manifest::{Component, Manifest};
use std::collections::BTreeMap;

/// Where an application variable's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum VariableSource {
    /// `--variable` / [`crate::app::AppBuilder::variable`].
    Flag,
    /// `SPIN_VARIABLE_<NAME>`.
    Env,
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
        .filter_map(|(k, v)| k.strip_prefix("SPIN_VARIABLE_").map(|name| (name.to_ascii_lowercase(), v)))
        .collect()
}

/// Application variable values, resolved from flags, environment and defaults.
#[derive(Clone)]
pub struct Resolver {
    values: BTreeMap<String, Result<(String, VariableSource), VariableError>>,
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
    /// Resolves every application variable of `manifest`.
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
        if let Some(name) = flags.keys().find(|k| !manifest.variables.contains_key(*k)) {
            return Err(VariableError::Undeclared(name.clone()));
        }
        let values = manifest
            .variables
            .iter()
            .map(|(name, decl)| {
                let v = if let Some(v) = flags.get(name) {
                    Ok((v.clone(), VariableSource::Flag))
                } else if let Some(v) = env.get(name) {
                    Ok((v.clone(), VariableSource::Env))
                } else if let Some(v) = &decl.default {
                    Ok((v.clone(), VariableSource::Default))
                } else {
                    Err(VariableError::Missing { name: name.clone() })
                };
                (name.clone(), v)
            })
            .collect();
        Ok(Self { values })
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
        self.values.iter().filter(|(_, v)| v.is_err()).map(|(k, _)| k.as_str()).collect()
    }

    /// Renders a component's variables: name → value, or the error of the first missing variable it uses.
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
}
