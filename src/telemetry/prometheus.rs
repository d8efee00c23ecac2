//! Collected OpenTelemetry metrics in the Prometheus text exposition format
//! (version 0.0.4), named as Prometheus' own OTLP translation names them:
//! dots become underscores, the unit `s` a `_seconds` suffix, monotonic
//! sums counters with `_total`, histograms cumulative `_bucket`s. A name
//! ending in `.count` (a number of things, not a histogram's count) drops
//! it and takes the plural, since Prometheus reserves the `_count` suffix
//! for histograms: `db.client.connection.count` is `db_client_connections`.
//! The resource (service name, version, `OTEL_RESOURCE_ATTRIBUTES`) is the
//! `target_info` gauge's labels.

use std::fmt::Write;

use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics};

/// The `Content-Type` of what `encode` writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric of `collected`, as Prometheus text.
pub fn encode(collected: &ResourceMetrics) -> String {
    let mut out = String::new();
    header(&mut out, "target_info", "Target metadata", "gauge");
    let resource: Vec<KeyValue> = collected
        .resource()
        .iter()
        .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
        .collect();
    let _ = writeln!(out, "target_info{} 1", labels(resource.iter(), None));
    for scope in collected.scope_metrics() {
        for metric in scope.metrics() {
            match metric.data() {
                AggregatedMetrics::F64(data) => write_metric(&mut out, metric, data),
                AggregatedMetrics::U64(data) => write_metric(&mut out, metric, data),
                AggregatedMetrics::I64(data) => write_metric(&mut out, metric, data),
            }
        }
    }
    out
}

/// A number Prometheus prints.
trait Sample: Copy {
    fn as_f64(self) -> f64;
}

impl Sample for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}

impl Sample for u64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

impl Sample for i64 {
    fn as_f64(self) -> f64 {
        self as f64
    }
}

fn write_metric<T: Sample>(out: &mut String, metric: &Metric, data: &MetricData<T>) {
    let base = metric_name(metric.name(), metric.unit());
    let help = metric
        .description()
        .replace('\\', "\\\\")
        .replace('\n', "\\n");
    match data {
        MetricData::Gauge(gauge) => {
            header(out, &base, &help, "gauge");
            for point in gauge.data_points() {
                sample(out, &base, &labels(point.attributes(), None), point.value());
            }
        }
        MetricData::Sum(sum) if sum.is_monotonic() => {
            let name = format!("{base}_total");
            header(out, &name, &help, "counter");
            for point in sum.data_points() {
                sample(out, &name, &labels(point.attributes(), None), point.value());
            }
        }
        MetricData::Sum(sum) => {
            header(out, &base, &help, "gauge");
            for point in sum.data_points() {
                sample(out, &base, &labels(point.attributes(), None), point.value());
            }
        }
        MetricData::Histogram(histogram) => {
            header(out, &base, &help, "histogram");
            for point in histogram.data_points() {
                let mut cumulative = 0u64;
                let bounds: Vec<f64> = point.bounds().collect();
                for (index, count) in point.bucket_counts().enumerate() {
                    cumulative += count;
                    let le = bounds
                        .get(index)
                        .map_or_else(|| "+Inf".to_owned(), |b| format_number(*b));
                    let _ = writeln!(
                        out,
                        "{base}_bucket{} {cumulative}",
                        labels(point.attributes(), Some(&le))
                    );
                }
                let plain = labels(point.attributes(), None);
                sample(out, &format!("{base}_sum"), &plain, point.sum());
                let _ = writeln!(out, "{base}_count{plain} {}", point.count());
            }
        }
        // Not used by this service: no exponential histograms are made.
        MetricData::ExponentialHistogram(_) => {}
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample<T: Sample>(out: &mut String, name: &str, labels: &str, value: T) {
    let _ = writeln!(out, "{name}{labels} {}", format_number(value.as_f64()));
}

/// `rpc.server.call.duration` in `s` → `rpc_server_call_duration_seconds`.
fn metric_name(name: &str, unit: &str) -> String {
    let mut base = match name.strip_suffix(".count") {
        Some(things) => format!("{}s", sanitize(things)),
        None => sanitize(name),
    };
    let suffix = match unit {
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        "1" => "ratio",
        // Annotations such as `{request}` carry no unit.
        _ => "",
    };
    if !suffix.is_empty() && !base.ends_with(suffix) {
        base.push('_');
        base.push_str(suffix);
    }
    base
}

/// `{a="1",b="2"}`, with `le` last for histogram buckets; empty when none.
fn labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>, le: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = attributes
        .map(|kv| (sanitize(kv.key.as_str()), kv.value.to_string()))
        .collect();
    pairs.sort();
    if let Some(le) = le {
        pairs.push(("le".to_owned(), le.to_owned()));
    }
    if pairs.is_empty() {
        return String::new();
    }
    let body: Vec<String> = pairs
        .into_iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape_label_value(&value)))
        .collect();
    format!("{{{}}}", body.join(","))
}

fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn escape_label_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_number(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else if value.is_nan() {
        "NaN".to_owned()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_translation() {
        assert_eq!(
            metric_name("rpc.server.call.duration", "s"),
            "rpc_server_call_duration_seconds"
        );
        assert_eq!(
            metric_name("http.server.active_requests", "{request}"),
            "http_server_active_requests"
        );
        assert_eq!(sanitize("9lives.x-y"), "_9lives_x_y");
        assert_eq!(
            metric_name("db.client.connection.count", "{connection}"),
            "db_client_connections"
        );
    }

    #[test]
    fn label_values_are_escaped_and_sorted() {
        let attributes = [
            KeyValue::new("rpc.method", "Create\"Workspace\"\n"),
            KeyValue::new("a", "b\\c"),
        ];
        assert_eq!(
            labels(attributes.iter(), Some("0.5")),
            r#"{a="b\\c",rpc_method="Create\"Workspace\"\n",le="0.5"}"#
        );
        assert_eq!(labels([].iter(), None), "");
    }
}
