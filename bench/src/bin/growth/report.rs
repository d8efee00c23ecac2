//! The markdown tables.

use std::time::Duration;

use crate::Sized;

/// 1000 → "1k", 100000 → "100k", 1000000 → "1M".
pub fn label(size: u64) -> String {
    match size {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

pub fn print(results: &[Sized]) {
    loads(results);
    calls(results);
    idle(results);
    verdicts(results);
}

/// Issue 29's Done-when items, from this run: the largest size of each
/// backend against its smallest.
fn verdicts(results: &[Sized]) {
    println!();
    for backend in ["PostgreSQL", "SQLite"] {
        let sizes: Vec<&Sized> = results.iter().filter(|r| r.backend == backend).collect();
        let (Some(small), Some(large)) = (sizes.first(), sizes.last()) else {
            continue;
        };
        let (at_small, at_large) = (label(small.shape.workspaces), label(large.shape.workspaces));
        for (i, m) in large.rpcs.iter().enumerate() {
            let wanted = m.rpc.starts_with("ListWorkspaces") || m.rpc == "DeleteWorkspace";
            if !wanted || sizes.len() < 2 {
                continue;
            }
            let base = &small.rpcs[i];
            let times = |q: f64| m.quantile(q).as_secs_f64() / base.quantile(q).as_secs_f64();
            let (p50, p99) = (times(0.5), times(0.99));
            let verdict = if p50 <= 2.0 { "met" } else { "MISSED" };
            println!(
                "- {backend}, {}: p50 at {at_large} is {p50:.2} × at {at_small} (≤ 2: {verdict}); p99 {p99:.2} ×",
                m.rpc
            );
        }
        if backend == "PostgreSQL" {
            let per_second = large.idle.database.as_secs_f64() * 1e3 / large.idle_seconds as f64;
            let verdict = if per_second < 5.0 { "met" } else { "MISSED" };
            println!(
                "- PostgreSQL, idle server with {at_large} sent + {at_large} unsent events: {per_second:.2} ms of CPU per second (< 5: {verdict})"
            );
        }
    }
}

fn loads(results: &[Sized]) {
    println!(
        "| database | workspaces | OWNER's organizations | MEMBER's memberships | loaded in |"
    );
    println!("|---|---:|---:|---:|---:|");
    for r in results {
        println!(
            "| {} | {} | {} | {} | {:.1?} |",
            r.backend,
            label(r.shape.workspaces),
            r.shape.organizations,
            r.shape.member_of(),
            r.loaded_in
        );
    }
    println!();
}

/// Every RPC at every size of a backend, side by side; "× smallest" is
/// p50 (and p99) over the same RPC's at the backend's first size.
fn calls(results: &[Sized]) {
    println!(
        "| RPC | database | workspaces | ok / calls | p50 ms | p99 ms | p50 × smallest | p99 × smallest | server CPU µs/call | PostgreSQL CPU µs/call |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for backend in ["PostgreSQL", "SQLite"] {
        let sizes: Vec<&Sized> = results.iter().filter(|r| r.backend == backend).collect();
        let Some(first) = sizes.first() else {
            continue;
        };
        for (i, base) in first.rpcs.iter().enumerate() {
            for s in &sizes {
                let m = &s.rpcs[i];
                let calls = m.latencies.len() + m.errors.values().sum::<usize>();
                let errors = if m.errors.is_empty() {
                    String::new()
                } else {
                    format!(" {:?}", m.errors)
                };
                let times = |q: f64| m.quantile(q).as_secs_f64() / base.quantile(q).as_secs_f64();
                let database = if backend == "SQLite" {
                    "—".to_owned()
                } else {
                    us(m.per_call(m.cpu.database))
                };
                println!(
                    "| {} | {backend} | {} | {}/{calls}{errors} | {} | {} | {:.2} | {:.2} | {} | {database} |",
                    m.rpc,
                    label(s.shape.workspaces),
                    m.latencies.len(),
                    ms(m.quantile(0.5)),
                    ms(m.quantile(0.99)),
                    times(0.5),
                    times(0.99),
                    us(m.per_call(m.cpu.server)),
                );
            }
        }
    }
    println!();
}

fn idle(results: &[Sized]) {
    println!(
        "| idle server | workspaces | events sent + unsent | server CPU ms/s | PostgreSQL CPU ms/s, this database's processes | all postgres processes ms/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in results {
        let per_second =
            |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3 / r.idle_seconds as f64);
        let (database, all) = if r.backend == "SQLite" {
            ("—".to_owned(), "—".to_owned())
        } else {
            (per_second(r.idle.database), per_second(r.idle.all_postgres))
        };
        let events = label(r.shape.workspaces);
        println!(
            "| {} | {} | {events} + {events} | {} | {database} | {all} |",
            r.backend,
            label(r.shape.workspaces),
            per_second(r.idle.server),
        );
    }
}
