//! Spin's `{{ name }}` templates, as used in `[component.x.variables]` values and `allowed_outbound_hosts`.
//!
//! A template is literal text with `{{ variable }}` holes (whitespace inside the braces is optional). Holes name
//! *application* variables (`[variables]`); the manifest is rejected if a hole is malformed or names an undeclared
//! variable, so a typo is caught before any component is loaded rather than at the first request.
//!
//! ```
//! use harness::template::Template;
//! let t = Template::parse("https://{{ host }}:{{port}}").unwrap();
//! assert_eq!(t.variables().collect::<Vec<_>>(), ["host", "port"]);
//! let url = t.render(|name| Ok::<_, ()>(if name == "host" { "example.com".into() } else { "443".into() }));
//! assert_eq!(url.unwrap(), "https://example.com:443");
//! ```

use std::fmt;

/// Why a template or a variable name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{{` without its closing `}}`.
    #[error("unclosed `{{{{` in template {template:?}")]
    Unclosed {
        /// The whole template text.
        template: String,
    },
    /// The text between the braces is not a valid variable name.
    #[error("invalid variable name {name:?} in template {template:?} (use lower-case letters, digits and `_`)")]
    InvalidName {
        /// The offending name.
        name: String,
        /// The whole template text.
        template: String,
    },
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text copied as is.
    Literal(String),
    /// A `{{ name }}` hole.
    Variable(String),
}

/// A parsed template: literal text and variable holes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`.
    ///
    /// # Errors
    /// [`TemplateError::Unclosed`] for a `{{` without `}}`, [`TemplateError::InvalidName`] for a hole whose
    /// content is not a valid variable name.
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(TemplateError::Unclosed { template: text.to_owned() });
            };
            let name = after[..end].trim();
            if !is_valid_variable_name(name) {
                return Err(TemplateError::InvalidName { name: name.to_owned(), template: text.to_owned() });
            }
            parts.push(Part::Variable(name.to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { source: text.to_owned(), parts })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the template has no holes (its value is its text).
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The names of the variables the template refers to, in order of appearance.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Fills the holes with `lookup(name)`.
    ///
    /// # Errors
    /// The first error `lookup` returns.
    pub fn render<E>(&self, mut lookup: impl FnMut(&str) -> Result<String, E>) -> Result<String, E> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => out.push_str(&lookup(name)?),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Whether `name` is a valid Spin variable name: a lower-case letter, then lower-case letters, digits or `_`.
///
/// The same rule applies to application and component variables; it is what makes the
/// `SPIN_VARIABLE_<UPPERCASE_NAME>` environment mapping unambiguous.
pub fn is_valid_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.ends_with('_')
        && !name.contains("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixed_literal_and_holes() {
        let t = Template::parse("pre-{{a}}-mid-{{ b_2 }}").expect("valid");
        assert!(!t.is_literal());
        assert_eq!(t.variables().collect::<Vec<_>>(), ["a", "b_2"]);
        let out = t.render(|n| Ok::<_, ()>(n.to_uppercase())).expect("render");
        assert_eq!(out, "pre-A-mid-B_2");
    }

    #[test]
    fn literal_text_is_kept() {
        let t = Template::parse("https://example.com").expect("valid");
        assert!(t.is_literal());
        assert_eq!(t.render(|_| Err::<String, ()>(())).expect("no lookups"), "https://example.com");
    }

    #[test]
    fn unclosed_and_bad_names_are_rejected() {
        assert!(matches!(Template::parse("{{ a "), Err(TemplateError::Unclosed { .. })));
        assert!(matches!(Template::parse("{{ A }}"), Err(TemplateError::InvalidName { .. })));
        assert!(matches!(Template::parse("{{}}"), Err(TemplateError::InvalidName { .. })));
        assert!(matches!(Template::parse("{{ 1a }}"), Err(TemplateError::InvalidName { .. })));
    }

    #[test]
    fn variable_name_rule() {
        for ok in ["a", "access_keys", "x9", "a_b_c"] {
            assert!(is_valid_variable_name(ok), "{ok}");
        }
        for bad in ["", "A", "9a", "_a", "a-b", "a_", "a__b", "é"] {
            assert!(!is_valid_variable_name(bad), "{bad}");
        }
    }
}
