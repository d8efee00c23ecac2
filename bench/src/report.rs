//! The figures: each case's measurements, the service's throughput and
//! database CPU as shares of its ceilings round by round, the empty call,
//! the server's memory, and the cases side by side.

use std::time::Duration;

use crate::{
    cases::{Case, Shares, database_cpu_share, database_cpu_us},
    load::Run,
};

/// Prints every case, then the empty call, the peak memory and a table of
/// the cases.
pub(crate) fn report(cases: &[Case], empty: &Run, peak_rss: Option<u64>, postgres: bool) {
    for case in cases {
        print_case(case, empty, postgres);
    }
    println!();
    empty.print();
    println!(
        "server peak resident memory: {}",
        peak_rss.map_or("unknown".into(), |kib| format!(
            "{:.1} MiB",
            kib as f64 / 1024.0
        ))
    );
    print_table(cases, postgres);
}

/// One case's measurements and shares, overall and by round.
fn print_case(case: &Case, empty: &Run, postgres: bool) {
    let [grpc, http, cheapest, replay] = &case.runs;
    println!();
    println!("== {}: {} ==", case.name, case.shape());
    for run in case.runs.iter().chain(&case.baseline).chain(&case.fastapi) {
        run.print();
    }
    let share = |a: &Run, b: &Run| a.per_second() / b.per_second();
    let by_round = |of: &dyn Fn(&Shares) -> String| {
        let each: Vec<_> = case.by_round.iter().map(of).collect();
        format!("(by round {})", each.join(" "))
    };
    let rounds = |of: fn(&Shares) -> f64| by_round(&|r| format!("{:.2}", of(r)));
    let line = |label: &str, value: f64, by_round: String| {
        println!("{label:<52} {value:.2} {by_round}");
    };
    line(
        "gRPC creates / cheapest-form ceiling:",
        share(grpc, cheapest),
        rounds(|r| r.grpc_ceiling),
    );
    line(
        "HTTP creates / gRPC creates:",
        share(http, grpc),
        rounds(|r| r.http_grpc),
    );
    line(
        "gRPC creates / its own statements:",
        share(grpc, replay),
        rounds(|r| r.grpc_replay),
    );
    line(
        database_cpu_label(postgres),
        database_cpu_share(grpc, cheapest, postgres),
        rounds(|r| r.database_cpu_us.0 / r.database_cpu_us.1),
    );
    println!(
        "{:<52} {}",
        "  that CPU per create in µs, gRPC service/ceiling:",
        by_round(&|r| format!("{:.0}/{:.0}", r.database_cpu_us.0, r.database_cpu_us.1))
    );
    line(
        "HTTP creates / cheapest-form ceiling:",
        share(http, cheapest),
        String::new(),
    );
    if let Some(baseline) = &case.baseline {
        line(
            "gRPC creates / the baseline server's:",
            share(grpc, baseline),
            rounds(|r| r.grpc_baseline.unwrap_or(f64::NAN)),
        );
        let us = |run: &Run| run.per_call(run.cpu.server) * 1e6;
        println!(
            "{:<52} {:.0} µs / {:.0} µs",
            "server CPU per gRPC create, server / baseline:",
            us(grpc),
            us(baseline)
        );
    }
    if let Some(fastapi) = &case.fastapi {
        line(
            "gRPC creates / the FastAPI stack's HTTP creates:",
            share(grpc, fastapi),
            rounds(|r| r.grpc_fastapi.unwrap_or(f64::NAN)),
        );
        line(
            "HTTP creates / the FastAPI stack's:",
            share(http, fastapi),
            String::new(),
        );
        let us = |run: &Run| run.per_call(run.cpu.server) * 1e6;
        let pg = |run: &Run| run.per_call(run.cpu.database) * 1e6;
        println!(
            "{:<52} {:.0} µs / {:.0} µs; PostgreSQL {:.0} µs / {:.0} µs",
            "CPU per create, service's HTTP / FastAPI stack's:",
            us(http),
            us(fastapi),
            pg(http),
            pg(fastapi)
        );
    }
    line(
        "gRPC creates / empty calls:",
        share(grpc, empty),
        String::new(),
    );
}

/// What `database_cpu_share` divides.
fn database_cpu_label(postgres: bool) -> &'static str {
    if postgres {
        "PostgreSQL CPU per create, gRPC service / ceiling:"
    } else {
        "CPU per create, gRPC server / bare-sqlx ceiling:"
    }
}

/// The cases side by side, one row each (Markdown, for BENCHMARKS.md).
fn print_table(cases: &[Case], postgres: bool) {
    // SQLite runs inside the server and inside the bare loop: their CPU.
    let database = if postgres {
        "PostgreSQL CPU"
    } else {
        "CPU (SQLite in process)"
    };
    println!();
    println!(
        "| case | gRPC creates/s | p50 | p99 | HTTP creates/s | p50 | p99 | ceiling/s | server CPU per gRPC create | {database} per create: gRPC / ceiling | gRPC / ceiling | HTTP / gRPC | {database} gRPC / ceiling |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for case in cases {
        let [grpc, http, cheapest, _] = &case.runs;
        let ms = |run: &Run, p: f64| format!("{:.1} ms", run.percentile(p).as_secs_f64() * 1e3);
        let us = |run: &Run, cpu: Duration| format!("{:.0} µs", run.per_call(cpu) * 1e6);
        let (service_us, ceiling_us) = database_cpu_us(grpc, cheapest, postgres);
        println!(
            "| {} ({} × {}) | {:.0} | {} | {} | {:.0} | {} | {} | {:.0} | {} | {:.0} µs / {:.0} µs | {:.2} | {:.2} | {:.2} |",
            case.name,
            case.organizations,
            case.users_per_organization,
            grpc.per_second(),
            ms(grpc, 0.50),
            ms(grpc, 0.99),
            http.per_second(),
            ms(http, 0.50),
            ms(http, 0.99),
            cheapest.per_second(),
            us(grpc, grpc.cpu.server),
            service_us,
            ceiling_us,
            grpc.per_second() / cheapest.per_second(),
            http.per_second() / grpc.per_second(),
            service_us / ceiling_us,
        );
    }
}
