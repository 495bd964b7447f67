//! `[log]`: how much the broker logs and in which format.

use super::ConfigError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// What is logged, as `RUST_LOG` takes it (`info`, `stomphub=debug,info`).
    /// `RUST_LOG`, when set, wins at start; a reload applies this.
    pub level: String,
    /// `text` or `json`; a restart applies it.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl LogConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map(drop)
            .map_err(|error| {
                ConfigError::invalid(
                    "log.level",
                    format!(
                        "{:?} is not a filter such as \"info\" or \"stomphub=debug,info\": {error}",
                        self.level
                    ),
                )
            })
    }
}
