//! Configuration and logging rules of the license component (the routes are tested through the Wasm component
//! against the mock marketplace: `tests/tests/license_wasm.rs`).

use super::*;

fn config(pairs: &[(&str, &str)]) -> Result<LicenseConfig, ConfigError> {
    LicenseConfig::from_variables(|n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned()))
}

#[test]
fn only_the_access_keys_are_required() {
    assert_eq!(config(&[]).err(), Some(ConfigError::Missing("access_keys")));
    let cfg = config(&[("access_keys", "k")]).expect("callbacks work without the OpenAPI");
    assert_eq!(cfg.openapi.err(), Some(ConfigError::Missing("openapi_ak")));
    assert!(cfg.client_token.is_none() && cfg.activities.is_empty());
}

#[test]
fn activity_names() {
    let cfg =
        config(&[("access_keys", "k"), ("license_activities", " expiry=upd , release=rel,status=st")]).expect("valid");
    assert_eq!(
        cfg.activities,
        [
            ("upd".to_owned(), CallbackKind::Expiry),
            ("rel".to_owned(), CallbackKind::Release),
            ("st".to_owned(), CallbackKind::Status)
        ]
    );
    for bad in ["expiry", "expiry=", "freeze=x", "=x"] {
        let got = config(&[("access_keys", "k"), ("license_activities", bad)]).err();
        assert!(matches!(got, Some(ConfigError::Invalid { name: "license_activities", .. })), "{bad}");
    }
}

#[test]
fn a_license_code_is_logged_by_its_first_characters_only() {
    assert_eq!(log_safe_code("MOCK-LICENSE-0001"), "MOCK…");
    assert_eq!(log_safe_code("\u{1b}[31mAB"), "31mA…");
    assert!(
        !format!("{:?}", config(&[("access_keys", "k"), ("license_client_token", "tok-123")]).expect("valid"))
            .contains("tok-123")
    );
}
