//! The process's and the async runtime's own measurements, read from
//! Linux's `/proc` and tokio at each collection. Process metrics are named
//! as the OpenTelemetry semantic conventions v1.40.0 name them
//! (`process.cpu.time`, `process.memory.usage`, …); the runtime's, which no
//! convention covers, are `workspace_service.runtime.*`.

use std::time::Instant;

use opentelemetry::{KeyValue, metrics::Meter};

/// Registers the observable instruments on `meter`.
pub(super) fn register(meter: &Meter) {
    let started = Instant::now();
    let _ = meter
        .f64_observable_counter("process.cpu.time")
        .with_unit("s")
        .with_description("CPU time the process used, by mode (user, system).")
        .with_callback(|observer| {
            if let Some(stat) = Stat::read() {
                observer.observe(stat.user_seconds, &[KeyValue::new("cpu.mode", "user")]);
                observer.observe(stat.system_seconds, &[KeyValue::new("cpu.mode", "system")]);
            }
        })
        .build();
    let _ = meter
        .i64_observable_up_down_counter("process.memory.usage")
        .with_unit("By")
        .with_description("Resident memory of the process.")
        .with_callback(|observer| {
            if let Some(bytes) = status_kib("VmRSS:") {
                observer.observe(bytes * 1024, &[]);
            }
        })
        .build();
    let _ = meter
        .i64_observable_up_down_counter("process.memory.virtual")
        .with_unit("By")
        .with_description("Virtual memory of the process.")
        .with_callback(|observer| {
            if let Some(bytes) = status_kib("VmSize:") {
                observer.observe(bytes * 1024, &[]);
            }
        })
        .build();
    let _ = meter
        .i64_observable_up_down_counter("process.thread.count")
        .with_unit("{thread}")
        .with_description("Threads of the process.")
        .with_callback(|observer| {
            if let Some(threads) = status_value("Threads:") {
                observer.observe(threads, &[]);
            }
        })
        .build();
    let _ = meter
        .i64_observable_up_down_counter("process.unix.file_descriptor.count")
        .with_unit("{file_descriptor}")
        .with_description("File descriptors the process has open.")
        .with_callback(|observer| {
            if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
                observer.observe(entries.count() as i64, &[]);
            }
        })
        .build();
    let _ = meter
        .f64_observable_gauge("process.uptime")
        .with_unit("s")
        .with_description("How long the process has run.")
        .with_callback(move |observer| observer.observe(started.elapsed().as_secs_f64(), &[]))
        .build();

    register_runtime(meter);
}

/// The tokio runtime's own instruments, when there is a runtime.
fn register_runtime(meter: &Meter) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let workers = runtime.clone();
    let _ = meter
        .i64_observable_up_down_counter("workspace_service.runtime.workers")
        .with_unit("{thread}")
        .with_description("tokio worker threads.")
        .with_callback(move |observer| {
            observer.observe(workers.metrics().num_workers() as i64, &[]);
        })
        .build();
    let tasks = runtime.clone();
    let _ = meter
        .i64_observable_up_down_counter("workspace_service.runtime.tasks")
        .with_unit("{task}")
        .with_description("tokio tasks alive.")
        .with_callback(move |observer| {
            observer.observe(tasks.metrics().num_alive_tasks() as i64, &[]);
        })
        .build();
    let _ = meter
        .i64_observable_up_down_counter("workspace_service.runtime.global_queue_depth")
        .with_unit("{task}")
        .with_description("tokio tasks waiting in the global queue for a worker.")
        .with_callback(move |observer| {
            observer.observe(runtime.metrics().global_queue_depth() as i64, &[]);
        })
        .build();
}

/// CPU times from `/proc/self/stat`.
struct Stat {
    user_seconds: f64,
    system_seconds: f64,
}

impl Stat {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may
        // hold spaces: state is field 3, utime 14, stime 15.
        let after_name = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks <= 0 {
            return None;
        }
        let seconds = |index: usize| -> Option<f64> {
            Some(fields.get(index)?.parse::<u64>().ok()? as f64 / ticks as f64)
        };
        Some(Self {
            user_seconds: seconds(11)?,
            system_seconds: seconds(12)?,
        })
    }
}

/// A `Name:  value kB` line of `/proc/self/status`, in KiB.
fn status_kib(name: &str) -> Option<i64> {
    status_value(name)
}

/// The first number on the `name` line of `/proc/self/status`.
fn status_value(name: &str) -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_is_read() {
        let stat = Stat::read().expect("/proc/self/stat");
        assert!(stat.user_seconds >= 0.0 && stat.system_seconds >= 0.0);
        assert!(status_kib("VmRSS:").unwrap() > 0);
        assert!(status_value("Threads:").unwrap() >= 1);
    }
}
