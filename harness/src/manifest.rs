//! `spin.toml` (manifest version 2): the subset the harness runs, parsed and validated before anything is loaded.
//!
//! Read: `[application]` (name, version, description, `[application.trigger.http] base`), `[variables]`
//! (`default`, `required`, `secret`), `[[trigger.http]]` (`route`, `component`), and per `[component.<id>]`:
//! `source`, `key_value_stores`, `allowed_outbound_hosts`, `variables`, `environment`, `build`. Other Spin fields
//! (`files`, `sqlite_databases`, …) are accepted and ignored, so a real Spin manifest loads unchanged.
//!
//! Validation happens in two steps so that errors come in the order a user can fix them:
//!
//! 1. [`Manifest::from_file`] checks the document itself: version, names, templates referring to declared
//!    variables, triggers naming existing components, literal `allowed_outbound_hosts` entries.
//! 2. [`Manifest::check_sources`] checks that every component's Wasm file exists, and says how to build it if not.
//!
//! ```no_run
//! let manifest = harness::manifest::Manifest::from_file("spin.toml".as_ref())?;
//! manifest.check_sources()?;
//! for t in &manifest.triggers {
//!     println!("{} -> {}", t.route, t.component);
//! }
//! # Ok::<(), harness::manifest::ManifestError>(())
//! ```

use crate::outbound::AllowedHost;
use crate::template::{Template, TemplateError, is_valid_variable_name};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a manifest was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not have the manifest's shape.
    #[error("invalid manifest {path}: {source}")]
    Parse {
        /// The manifest path.
        path: PathBuf,
        /// The TOML error, with line and column.
        source: Box<toml::de::Error>,
    },
    /// `spin_manifest_version` is not 2.
    #[error("unsupported spin_manifest_version {0} (the harness reads version 2)")]
    UnsupportedVersion(i64),
    /// A variable name breaks the naming rule.
    #[error("invalid variable name {0:?} (use lower-case letters, digits and `_`, starting with a letter)")]
    InvalidVariableName(String),
    /// A variable is both `required` and has a `default`, which Spin rejects.
    #[error("variable `{0}` is required and also has a default; choose one")]
    RequiredWithDefault(String),
    /// A variable is neither `required` nor has a `default`.
    #[error("variable `{0}` needs either `required = true` or a `default`")]
    NoDefault(String),
    /// A component id breaks the naming rule.
    #[error("invalid component id {0:?} (use lower-case letters, digits and `-`)")]
    InvalidComponentId(String),
    /// A `[[trigger.http]]` names a component that is not defined.
    #[error("trigger for route {route:?} names component `{component}`, which is not defined in [component.*]")]
    UnknownComponent {
        /// The trigger's route.
        route: String,
        /// The missing component id.
        component: String,
    },
    /// A route is not a path.
    #[error("trigger route {0:?} must start with `/`")]
    InvalidRoute(String),
    /// A template is malformed.
    #[error("component `{component}`, {field}: {source}")]
    Template {
        /// The component id.
        component: String,
        /// Where the template is (`variables.x`, `allowed_outbound_hosts`).
        field: String,
        /// What is wrong.
        source: TemplateError,
    },
    /// A template refers to a variable that `[variables]` does not declare.
    #[error("component `{component}`, {field}: variable `{variable}` is not declared in [variables]")]
    UndeclaredVariable {
        /// The component id.
        component: String,
        /// Where the template is.
        field: String,
        /// The undeclared name.
        variable: String,
    },
    /// A literal `allowed_outbound_hosts` entry cannot be parsed.
    #[error("component `{component}`, allowed_outbound_hosts entry {entry:?}: {reason}")]
    InvalidAllowedHost {
        /// The component id.
        component: String,
        /// The entry as written.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// A `source` form the harness does not support (a URL source).
    #[error("component `{0}`: only a local file `source` is supported")]
    UnsupportedSource(String),
    /// A component's Wasm file does not exist.
    #[error("component `{component}`: source {path} does not exist; build the components first: {hint}")]
    MissingSource {
        /// The component id.
        component: String,
        /// The resolved path.
        path: PathBuf,
        /// The build command(s) to run.
        hint: String,
    },
}

/// An application variable declared in `[variables]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    /// The value used when no provider sets one.
    #[serde(default)]
    pub default: Option<String>,
    /// Whether a value must be provided (by `--variable` or `SPIN_VARIABLE_*`).
    #[serde(default)]
    pub required: bool,
    /// Whether the value is a secret: never logged or printed.
    #[serde(default)]
    pub secret: bool,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTrigger {
    /// The route as written (`/produce`, `/api/...`).
    pub route: String,
    /// The component id it maps to.
    pub component: String,
}

/// `[component.<id>.build]`: how to build the Wasm file; used for the "build the components first" hint.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BuildDecl {
    /// The shell command.
    pub command: String,
    /// The directory to run it in, relative to the manifest.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Files whose change triggers a rebuild (`spin watch`).
    #[serde(default)]
    pub watch: Vec<String>,
}

/// A validated `[component.<id>]`.
#[derive(Debug, Clone)]
pub struct Component {
    /// The component id.
    pub id: String,
    /// The Wasm file, resolved against the manifest directory.
    pub source: PathBuf,
    /// The key-value store labels the component may open.
    pub key_value_stores: Vec<String>,
    /// `allowed_outbound_hosts` entries (templates; resolved when the app is built).
    pub allowed_outbound_hosts: Vec<Template>,
    /// The component's variables: name → template over application variables.
    pub variables: BTreeMap<String, Template>,
    /// Environment variables for the guest.
    pub environment: BTreeMap<String, String>,
    /// The build section, if any.
    pub build: Option<BuildDecl>,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest file.
    pub path: PathBuf,
    /// Its directory: relative `source` paths and the default `.spin/` state directory are under it.
    pub dir: PathBuf,
    /// `[application] name`.
    pub name: String,
    /// `[application] version`.
    pub version: Option<String>,
    /// `[application.trigger.http] base`, default `/`.
    pub base: String,
    /// `[variables]`.
    pub variables: BTreeMap<String, VariableDecl>,
    /// `[[trigger.http]]`, in file order.
    pub triggers: Vec<HttpTrigger>,
    /// `[component.*]` by id.
    pub components: BTreeMap<String, Component>,
}

// ---- raw serde shapes ----

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: i64,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    trigger: RawAppTrigger,
}

#[derive(Deserialize, Default)]
struct RawAppTrigger {
    #[serde(default)]
    http: Option<RawAppHttp>,
}

#[derive(Deserialize)]
struct RawAppHttp {
    #[serde(default)]
    base: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Path(String),
    Private {
        #[allow(dead_code, reason = "only its presence matters: private routes are not served")]
        private: bool,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSource {
    Path(String),
    Remote(#[allow(dead_code, reason = "only its presence matters: URL sources are rejected")] toml::Table),
}

#[derive(Deserialize)]
struct RawComponent {
    source: RawSource,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    build: Option<BuildDecl>,
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    ///
    /// # Errors
    /// [`ManifestError::Read`] / [`ManifestError::Parse`] for an unreadable file, or the first validation error.
    pub fn from_file(path: &Path) -> Result<Self, ManifestError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Self::parse(&text, path, &dir)
    }

    /// Validates manifest `text` as if read from `path`, with sources relative to `dir`.
    ///
    /// # Errors
    /// As [`Manifest::from_file`], without the read error.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Self, ManifestError> {
        let raw: RawManifest = toml::from_str(text)
            .map_err(|source| ManifestError::Parse { path: path.to_owned(), source: Box::new(source) })?;
        if raw.spin_manifest_version != 2 {
            return Err(ManifestError::UnsupportedVersion(raw.spin_manifest_version));
        }
        for (name, decl) in &raw.variables {
            if !is_valid_variable_name(name) {
                return Err(ManifestError::InvalidVariableName(name.clone()));
            }
            match (decl.required, &decl.default) {
                (true, Some(_)) => return Err(ManifestError::RequiredWithDefault(name.clone())),
                (false, None) => return Err(ManifestError::NoDefault(name.clone())),
                _ => {}
            }
        }

        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let component = validate_component(&id, c, &raw.variables, dir)?;
            components.insert(id, component);
        }

        let mut triggers = Vec::new();
        for t in raw.trigger.http {
            let RawRoute::Path(route) = t.route else { continue };
            if !route.starts_with('/') {
                return Err(ManifestError::InvalidRoute(route));
            }
            if !components.contains_key(&t.component) {
                return Err(ManifestError::UnknownComponent { route, component: t.component });
            }
            triggers.push(HttpTrigger { route, component: t.component });
        }

        let base = raw.application.trigger.http.and_then(|h| h.base).unwrap_or_else(|| "/".to_owned());
        Ok(Self {
            path: path.to_owned(),
            dir: dir.to_owned(),
            name: raw.application.name,
            version: raw.application.version,
            base,
            variables: raw.variables,
            triggers,
            components,
        })
    }

    /// Checks that every component's Wasm file exists.
    ///
    /// # Errors
    /// [`ManifestError::MissingSource`] for the first missing file; its message lists the build commands of every
    /// component whose file is missing.
    pub fn check_sources(&self) -> Result<(), ManifestError> {
        let missing: Vec<&Component> = self.components.values().filter(|c| !c.source.is_file()).collect();
        let Some(first) = missing.first() else { return Ok(()) };
        // One command per missing file: any component built from that file may carry the build section.
        let mut commands: Vec<String> = Vec::new();
        for c in &missing {
            let command = self
                .components
                .values()
                .filter(|other| other.source == c.source)
                .find_map(|other| other.build.as_ref().map(|b| b.command.clone()))
                .unwrap_or_else(|| format!("(no build command for {}; build it by hand)", c.source.display()));
            if !commands.contains(&command) {
                commands.push(command);
            }
        }
        Err(ManifestError::MissingSource {
            component: first.id.clone(),
            path: first.source.clone(),
            hint: commands.join(" && "),
        })
    }

    /// Whether application variable `name` is declared secret (unknown names count as secret, to be safe).
    pub fn is_secret(&self, name: &str) -> bool {
        self.variables.get(name).is_none_or(|v| v.secret)
    }
}

/// Whether `id` is a valid component id: lower-case letters and digits in words separated by single `-`.
fn is_valid_component_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--")
}

fn validate_component(
    id: &str,
    c: RawComponent,
    app_vars: &BTreeMap<String, VariableDecl>,
    dir: &Path,
) -> Result<Component, ManifestError> {
    if !is_valid_component_id(id) {
        return Err(ManifestError::InvalidComponentId(id.to_owned()));
    }
    let source = match c.source {
        RawSource::Path(p) => dir.join(p),
        RawSource::Remote(_) => return Err(ManifestError::UnsupportedSource(id.to_owned())),
    };
    let check_template = |field: String, text: &str| -> Result<Template, ManifestError> {
        let t = Template::parse(text).map_err(|source| ManifestError::Template {
            component: id.to_owned(),
            field: field.clone(),
            source,
        })?;
        if let Some(v) = t.variables().find(|v| !app_vars.contains_key(*v)) {
            return Err(ManifestError::UndeclaredVariable { component: id.to_owned(), field, variable: v.to_owned() });
        }
        Ok(t)
    };

    let mut variables = BTreeMap::new();
    for (name, value) in &c.variables {
        if !is_valid_variable_name(name) {
            return Err(ManifestError::InvalidVariableName(format!("{id}.{name}")));
        }
        variables.insert(name.clone(), check_template(format!("variables.{name}"), value)?);
    }
    let mut allowed = Vec::new();
    for entry in &c.allowed_outbound_hosts {
        let t = check_template("allowed_outbound_hosts".to_owned(), entry)?;
        if t.is_literal() {
            AllowedHost::parse(entry).map_err(|e| ManifestError::InvalidAllowedHost {
                component: id.to_owned(),
                entry: entry.clone(),
                reason: e.to_string(),
            })?;
        }
        allowed.push(t);
    }
    Ok(Component {
        id: id.to_owned(),
        source,
        key_value_stores: c.key_value_stores,
        allowed_outbound_hosts: allowed,
        variables,
        environment: c.environment,
        build: c.build,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(text, Path::new("spin.toml"), Path::new("/app"))
    }

    const GOOD: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[application.trigger.http]
base = "/"
[variables]
key = { required = true, secret = true }
host = { default = "example.com" }
[[trigger.http]]
route = "/a/..."
component = "a"
[[trigger.http]]
route = { private = true }
component = "a"
[component.a]
source = "a.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["https://{{ host }}", "http://localhost:3000"]
files = ["ignored.txt"]
[component.a.variables]
k = "{{ key }}"
greeting = "hello {{host}}!"
[component.a.build]
command = "cargo build -p a"
"#;

    #[test]
    fn reads_the_supported_fields() {
        let m = parse(GOOD).expect("valid");
        assert_eq!(m.name, "t");
        assert_eq!(m.triggers, vec![HttpTrigger { route: "/a/...".into(), component: "a".into() }]);
        let a = &m.components["a"];
        assert_eq!(a.source, Path::new("/app/a.wasm"));
        assert_eq!(a.key_value_stores, ["default"]);
        assert_eq!(a.variables["greeting"].variables().collect::<Vec<_>>(), ["host"]);
        assert!(m.is_secret("key"));
        assert!(!m.is_secret("host"));
        assert!(
            matches!(m.check_sources(), Err(ManifestError::MissingSource { hint, .. }) if hint == "cargo build -p a")
        );
    }

    #[test]
    fn unknown_component_in_trigger() {
        let text = GOOD.replace("component = \"a\"\n[[trigger.http]]", "component = \"b\"\n[[trigger.http]]");
        assert!(matches!(parse(&text), Err(ManifestError::UnknownComponent { component, .. }) if component == "b"));
    }

    #[test]
    fn bad_templates_and_undeclared_variables() {
        let text = GOOD.replace("\"{{ key }}\"", "\"{{ key \"");
        assert!(matches!(parse(&text), Err(ManifestError::Template { .. })));
        let text = GOOD.replace("\"{{ key }}\"", "\"{{ nope }}\"");
        assert!(matches!(parse(&text), Err(ManifestError::UndeclaredVariable { variable, .. }) if variable == "nope"));
    }

    #[test]
    fn bad_allowed_host_and_variable_rules() {
        let text = GOOD.replace("\"http://localhost:3000\"", "\"localhost\"");
        assert!(matches!(parse(&text), Err(ManifestError::InvalidAllowedHost { .. })));
        let text = GOOD.replace("{ default = \"example.com\" }", "{ required = true, default = \"x\" }");
        assert!(matches!(parse(&text), Err(ManifestError::RequiredWithDefault(_))));
        let text = GOOD.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(matches!(parse(&text), Err(ManifestError::UnsupportedVersion(1))));
    }
}
