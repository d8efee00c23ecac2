//! The figures: each measurement, the server's memory, and the service's
//! throughput as a share of each ceiling, round by round.

use crate::load::Run;

/// Prints `runs` (gRPC, HTTP, the empty call, the cheapest ceiling, the
/// replay, in that order), the peak memory and the shares by round.
pub(crate) fn report(runs: &[Run; 5], by_round: &[[f64; 3]], peak_rss: Option<u64>) {
    let [grpc, http, empty, cheapest, replay] = runs;
    println!();
    for run in runs {
        run.print();
    }
    println!();
    println!(
        "server peak resident memory: {}",
        peak_rss.map_or("unknown".into(), |kib| format!(
            "{:.1} MiB",
            kib as f64 / 1024.0
        ))
    );
    let share = |a: &Run, b: &Run| a.per_second() / b.per_second();
    let rounds = |i: usize| {
        by_round
            .iter()
            .map(|r| format!("{:.2}", r[i]))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "gRPC creates / cheapest-form ceiling: {:.2} (by round {})",
        share(grpc, cheapest),
        rounds(0)
    );
    println!(
        "HTTP creates / gRPC creates:          {:.2} (by round {})",
        share(http, grpc),
        rounds(1)
    );
    println!(
        "gRPC creates / its own statements:    {:.2} (by round {})",
        share(grpc, replay),
        rounds(2)
    );
    println!(
        "HTTP creates / cheapest-form ceiling: {:.2}",
        share(http, cheapest)
    );
    println!(
        "gRPC creates / empty calls:           {:.2}",
        share(grpc, empty)
    );
}
