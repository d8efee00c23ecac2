//! The name rules and telemetry settings.

use anyhow::bail;
use clap::{ArgAction, Args};

use crate::{domain::NameRules, telemetry::LogFormat};

#[derive(Clone, Debug, Args)]
pub struct RuleSettings {
    /// Shortest workspace name, in characters, after trimming.
    #[arg(long, env = "NAME_MIN_CHARS", default_value_t = 4, global = true)]
    pub name_min_chars: usize,

    /// Longest workspace name, in characters, after trimming.
    #[arg(long, env = "NAME_MAX_CHARS", default_value_t = 100, global = true)]
    pub name_max_chars: usize,

    /// Refuse CreateWorkspace without a billing account email (seed 001).
    #[arg(long, env = "REQUIRE_BILLING_EMAIL", action = ArgAction::SetTrue, global = true)]
    pub require_billing_email: bool,
}

impl RuleSettings {
    pub fn name_rules(&self) -> anyhow::Result<NameRules> {
        if self.name_min_chars == 0 || self.name_max_chars < self.name_min_chars {
            bail!(
                "name bounds {}..{} are not a range: need 1 <= NAME_MIN_CHARS <= NAME_MAX_CHARS",
                self.name_min_chars,
                self.name_max_chars
            );
        }
        Ok(NameRules {
            min_chars: self.name_min_chars,
            max_chars: self.name_max_chars,
            require_billing_email: self.require_billing_email,
            ..NameRules::default()
        })
    }
}

#[derive(Clone, Debug, Args)]
pub struct TelemetrySettings {
    /// OTLP/gRPC collector (`http://collector:4317`): export traces and
    /// metrics there. Unset: nothing is exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,

    /// OTLP protocol; only `grpc` is supported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", global = true)]
    pub otel_exporter_otlp_protocol: Option<String>,

    /// Trace `/metrics` scrapes and gRPC health checks too. Off: they are
    /// measured but make no span (a scrape or probe every few seconds
    /// would bury the calls that matter).
    #[arg(long, env = "TRACE_PROBES", default_value_t = false, action = ArgAction::Set, global = true)]
    pub trace_probes: bool,

    /// Log lines as text or JSON (RUST_LOG picks what is logged).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

impl TelemetrySettings {
    /// The OTLP endpoint to export to, if any (empty counts as unset).
    pub fn otlp_endpoint(&self) -> anyhow::Result<Option<&str>> {
        let endpoint = self
            .otel_exporter_otlp_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        match self.otel_exporter_otlp_protocol.as_deref().map(str::trim) {
            None | Some("" | "grpc") => Ok(endpoint),
            Some(other) if endpoint.is_some() => bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not supported: use grpc (port 4317)"
            ),
            Some(_) => Ok(None),
        }
    }
}
