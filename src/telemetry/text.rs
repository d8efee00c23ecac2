//! Log lines as text, one per line: time, level, the names of the spans
//! in scope (outermost first), target, message and the event's fields.
//!
//! Spans' fields are not written, in text as in JSON: a line's own fields
//! say what it is about (the call line names its RPC), and `tracing`'s own
//! formatter formats every span's fields when the span opens, for lines
//! that may never come (`NoSpanFields`).

use std::fmt::{self, Write as _};

use chrono::{SecondsFormat, Utc};
use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    field::RecordFields,
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

/// The line format of `LOG_FORMAT=text`; `ansi` colours the level (for a
/// terminal).
pub struct TextLines {
    pub ansi: bool,
}

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let time = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        let level = meta.level();
        if self.ansi {
            write!(writer, "{time} {}{level:>5}\x1b[0m ", colour(level))?;
        } else {
            write!(writer, "{time} {level:>5} ")?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}:", span.name())?;
            }
            writer.write_char(' ')?;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        writeln!(
            writer,
            "{}: {}{}",
            meta.target(),
            Escaped(&fields.message),
            Escaped(&fields.rest)
        )
    }
}

/// Text with its control characters escaped (`\n`, `\u{1b}`): a value
/// from a request (a name, an error's text) can neither start a line of
/// its own nor send a terminal escape sequence.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

fn colour(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        _ => "\x1b[35m",
    }
}

/// An event's message, and its other fields as ` name=value`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let _ = write!(self.rest, " {}={value}", field.name());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

/// Formats no span's fields: neither line format writes them.
pub struct NoSpanFields;

impl<'writer> FormatFields<'writer> for NoSpanFields {
    fn format_fields<R: RecordFields>(&self, _: Writer<'writer>, _: R) -> fmt::Result {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::{fmt::MakeWriter, layer::SubscriberExt};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;

        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// What `log` writes through the service's text format.
    fn written_by(log: impl FnOnce()) -> String {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .event_format(TextLines { ansi: false })
                .fmt_fields(NoSpanFields)
                .with_writer(lines.clone()),
        );
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn a_line_names_its_spans_and_writes_its_own_fields_not_theirs() {
        let written = written_by(|| {
            let call = tracing::info_span!("grpc.call", rpc.method = "Create");
            let _in_call = call.enter();
            let db = tracing::info_span!("db.statement", secret = "not written");
            let _in_db = db.enter();
            let err = std::io::Error::other("refused");
            tracing::warn!(rpc = %"Create", code = "OK", duration_ms = 1.5, error = &err as &dyn std::error::Error, "call");
        });
        let line = written.trim_end();
        assert_eq!(written.lines().count(), 1, "{written}");
        assert!(
            line.ends_with(
                " WARN grpc.call:db.statement: workspace_service::telemetry::text::tests: \
                 call rpc=Create code=\"OK\" duration_ms=1.5 error=refused"
            ),
            "{line}"
        );
        assert!(!line.contains("not written"), "{line}");
        chrono::DateTime::parse_from_rfc3339(line.split(' ').next().unwrap()).unwrap();
    }

    #[test]
    fn control_characters_from_values_are_escaped() {
        let name = "a\n2026-01-01T00:00:00Z  INFO forged\x1b[31m";
        let written = written_by(|| {
            let err = std::io::Error::other(name);
            tracing::warn!(name = %name, error = &err as &dyn std::error::Error, "refused {name}");
        });
        assert_eq!(written.lines().count(), 1, "{written}");
        assert!(!written.contains('\x1b'), "{written}");
        assert!(written.contains("refused a\\n2026"), "{written}");
        assert!(written.contains("name=a\\n2026"), "{written}");
        assert!(written.contains("error=a\\n2026"), "{written}");
        assert!(written.contains("forged\\u{1b}[31m"), "{written}");
    }
}
