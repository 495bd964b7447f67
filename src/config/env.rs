//! `STOMPHUB_<SECTION>__<KEY>=value` environment variables override keys of
//! the configuration, for containers: `__` separates table levels and the
//! rest is the key in upper case (`STOMPHUB_SERVER__BIND`,
//! `STOMPHUB_LIMITS__MAX_FRAME_SIZE`, `STOMPHUB_SERVER__TLS__CERT_FILE`).
//! A value is TOML when it is a number, `true`/`false`, or starts with `[`,
//! `{` or `"`; anything else is a string. Arrays of tables (`[[acl]]`) are
//! not reachable this way.

use super::ConfigError;

const PREFIX: &str = "STOMPHUB_";

/// Sets in `table` every override among `vars`; returns the keys set, in
/// the file's notation (`server.bind`).
pub(super) fn apply(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<String>, ConfigError> {
    let mut applied = Vec::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        // One-level names (STOMPHUB_CONFIG, STOMPHUB_BIND, ...) are flags of
        // the binary, not keys.
        if !rest.contains("__") {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                "environment",
                format!("{name}: empty key between '__'"),
            ));
        }
        let key = path.join(".");
        set(table, &path, value(&raw)).map_err(|reason| {
            ConfigError::invalid("environment", format!("{name} ({key}): {reason}"))
        })?;
        applied.push(key);
    }
    Ok(applied)
}

fn value(raw: &str) -> toml::Value {
    let looks_like_toml = raw.starts_with(['[', '{', '"'])
        || raw == "true"
        || raw == "false"
        || raw.parse::<i64>().is_ok()
        || raw.parse::<f64>().is_ok();
    if looks_like_toml
        && let Ok(mut parsed) = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        && let Some(value) = parsed.remove("v")
    {
        return value;
    }
    toml::Value::String(raw.to_owned())
}

fn set(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("no key")?;
    let mut here = table;
    for part in parents {
        let entry = here
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        here = entry
            .as_table_mut()
            .ok_or_else(|| format!("{part} is not a table"))?;
    }
    here.insert(last.clone(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn variables_become_keys_with_typed_values() {
        let mut table: toml::Table = "[server]\nbind = \"127.0.0.1:8080\"\n".parse().unwrap();
        let applied = apply(
            &mut table,
            vars(&[
                ("STOMPHUB_SERVER__BIND", "0.0.0.0:9000"),
                ("STOMPHUB_LIMITS__MAX_FRAME_SIZE", "131072"),
                ("STOMPHUB_SSE__ENABLED", "false"),
                ("STOMPHUB_SERVER__ALLOWED_ORIGINS", "[\"https://a.test\"]"),
                ("STOMPHUB_SERVER__TLS__CERT_FILE", "/etc/c.pem"),
                ("STOMPHUB_API__TOKEN", "\"123\""),
                ("STOMPHUB_CONFIG", "/elsewhere.toml"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(applied.len(), 6);
        assert_eq!(table["server"]["bind"].as_str(), Some("0.0.0.0:9000"));
        assert_eq!(table["limits"]["max_frame_size"].as_integer(), Some(131072));
        assert_eq!(table["sse"]["enabled"].as_bool(), Some(false));
        assert_eq!(
            table["server"]["allowed_origins"][0].as_str(),
            Some("https://a.test")
        );
        assert_eq!(
            table["server"]["tls"]["cert_file"].as_str(),
            Some("/etc/c.pem")
        );
        assert_eq!(table["api"]["token"].as_str(), Some("123"));
    }

    #[test]
    fn a_key_under_a_value_is_an_error_naming_the_variable() {
        let mut table: toml::Table = "[api]\ntoken = \"x\"\n".parse().unwrap();
        let error = apply(&mut table, vars(&[("STOMPHUB_API__TOKEN__X", "1")])).unwrap_err();
        assert!(
            error.to_string().contains("STOMPHUB_API__TOKEN__X"),
            "{error}"
        );
        let error = apply(&mut table, vars(&[("STOMPHUB_API____X", "1")])).unwrap_err();
        assert!(error.to_string().contains("empty key"), "{error}");
    }
}
