//! Typed settings, from flags or the environment, grouped by what they set
//! up: the database, the server, TLS, JWTs, the name rules, telemetry,
//! events, idempotency.
//! Secrets are kept in types that print masked; the settings are printed
//! at start.

mod database;
mod events;
mod idempotency;
mod rules;
mod security;
mod server;
mod units;

use clap::{Args, FromArgMatches};

pub use database::{DEFAULT_DATABASE_URL, DatabaseSettings, DatabaseUrl};
pub use events::{EventFormat, EventSettings};
pub use idempotency::IdempotencySettings;
pub use rules::{RuleSettings, TelemetrySettings};
pub use security::{JwtSettings, TlsSettings};
pub use server::ServerSettings;
pub use units::{ByteSize, HumanDuration};

/// Every setting of the service.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    #[command(flatten, next_help_heading = "Database")]
    pub database: DatabaseSettings,
    #[command(flatten, next_help_heading = "Server")]
    pub server: ServerSettings,
    #[command(flatten, next_help_heading = "TLS")]
    pub tls: TlsSettings,
    #[command(flatten, next_help_heading = "JWT")]
    pub jwt: JwtSettings,
    #[command(flatten, next_help_heading = "Rules")]
    pub rules: RuleSettings,
    #[command(flatten, next_help_heading = "Telemetry")]
    pub telemetry: TelemetrySettings,
    #[command(flatten, next_help_heading = "Events")]
    pub events: EventSettings,
    #[command(flatten, next_help_heading = "Idempotency")]
    pub idempotency: IdempotencySettings,
}

impl Default for Settings {
    /// The defaults, as if no flag and no environment variable were given:
    /// whatever the shell running the tests has set.
    fn default() -> Self {
        let command = Self::augment_args(clap::Command::new("workspace-service"))
            .mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["workspace-service"])
            .expect("every setting has a default");
        Self::from_arg_matches(&matches).expect("the defaults are valid settings")
    }
}

impl Settings {
    /// Whether the demo is seeded: as set, else on for SQLite only.
    pub fn seeds_demo(&self) -> bool {
        self.server
            .seed_demo
            .unwrap_or_else(|| self.database.url.is_sqlite())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn secrets_are_masked_when_printed() {
        let mut settings = Settings::default();
        settings.database.url = "postgres://app:hunter2@db:5432/workspaces"
            .to_owned()
            .into();
        settings.jwt.hs256_secret = Some("x".repeat(40).into());
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains(&"x".repeat(40)), "{printed}");
        assert!(
            printed.contains("postgres://app:***@db:5432/workspaces"),
            "{printed}"
        );
    }

    #[test]
    fn name_bounds_must_be_a_range() {
        let mut settings = Settings::default();
        settings.rules.name_min_chars = 10;
        settings.rules.name_max_chars = 5;
        assert!(settings.rules.name_rules().is_err());
    }

    #[test]
    fn durations_and_sizes_read_and_print_with_their_units() {
        for (text, secs, shown) in [
            ("7d", 7 * 86_400, "7d"),
            ("36h", 36 * 3_600, "36h"),
            ("90m", 5_400, "90m"),
            ("120", 120, "2m"),
            ("45s", 45, "45s"),
        ] {
            let read: HumanDuration = text.parse().unwrap();
            assert_eq!(read.0, Duration::from_secs(secs), "{text}");
            assert_eq!(read.to_string(), shown);
        }
        assert_eq!(
            "1500ms".parse::<HumanDuration>().unwrap().to_string(),
            "1500ms"
        );
        assert!("7 weeks".parse::<HumanDuration>().is_err());
        assert!("d".parse::<HumanDuration>().is_err());
        assert_eq!("1GiB".parse::<ByteSize>().unwrap(), ByteSize(1 << 30));
        assert_eq!("512MiB".parse::<ByteSize>().unwrap().to_string(), "512MiB");
        assert_eq!("1000".parse::<ByteSize>().unwrap().to_string(), "1000B");
        assert!("1GB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn stream_limits_are_bounded_by_default_and_checked() {
        let ack = Duration::from_secs(5);
        let events = Settings::default().events;
        assert_eq!(events.max_age.0, Duration::from_secs(7 * 86_400));
        assert_eq!(events.max_bytes.0, 1 << 30);
        assert_eq!(events.replicas, 1);
        assert_eq!(events.duplicate_window.0, Duration::from_secs(3_600));
        events.check_stream_limits(ack).unwrap();
        let with = |change: fn(&mut EventSettings)| {
            let mut events = Settings::default().events;
            change(&mut events);
            events.check_stream_limits(ack).unwrap_err().to_string()
        };
        assert!(with(|e| e.max_age = HumanDuration(Duration::ZERO)).contains("EVENTS_MAX_AGE"));
        assert!(with(|e| e.max_bytes = ByteSize(-1)).contains("EVENTS_MAX_BYTES"));
        assert!(with(|e| e.replicas = 7).contains("EVENTS_REPLICAS"));
        let short = with(|e| e.duplicate_window = HumanDuration(Duration::from_secs(3)));
        assert!(
            short.contains("EVENTS_DUPLICATE_WINDOW 3s") && short.contains("10400ms"),
            "{short}"
        );
        assert!(
            with(|e| e.max_age = HumanDuration(Duration::from_secs(60))).contains("longer than")
        );
    }

    #[test]
    fn request_ids_are_kept_a_week_and_a_window_of_nothing_is_refused() {
        let idempotency = Settings::default().idempotency;
        assert_eq!(idempotency.retention.0, Duration::from_secs(7 * 86_400));
        assert_eq!(idempotency.retention(), chrono::Duration::days(7));
        idempotency.check().unwrap();
        let mut none = idempotency.clone();
        none.retention = HumanDuration(Duration::ZERO);
        assert!(
            none.check()
                .unwrap_err()
                .to_string()
                .contains("IDEMPOTENCY_RETENTION")
        );
        let mut empty = idempotency;
        empty.purge_batch = 0;
        assert!(
            empty
                .check()
                .unwrap_err()
                .to_string()
                .contains("IDEMPOTENCY_PURGE_BATCH")
        );
    }

    #[test]
    fn defaults_ignore_the_environment() {
        // SAFETY: this test's process-wide variable is read back at once;
        // no other test reads DATABASE_MAX_CONNECTIONS.
        unsafe { std::env::set_var("DATABASE_MAX_CONNECTIONS", "77") };
        let settings = Settings::default();
        unsafe { std::env::remove_var("DATABASE_MAX_CONNECTIONS") };
        assert_eq!(settings.database.max_connections, 10);
    }
}
