//! A free port on 127.0.0.1 for a server a test or a benchmark starts,
//! chosen below the kernel's ephemeral range. A port found by binding port
//! 0 is in that range, from which the kernel also gives outgoing
//! connections their local port: between the pick and the server's bind a
//! connection may take it ("Address already in use", seen in CI). Below
//! the range only a listener can hold a port. Shared by the tests
//! (`common`) and the benchmarks (`#[path]`); `scripts/ports.py` is the
//! scripts' copy of the rule.

use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;

/// A port on 127.0.0.1 nothing listens on, below the ephemeral range.
pub fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let from = 10_000.min(low.saturating_sub(1000));
    let span = u64::from(low - from);
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u32(std::process::id());
    let start = random.finish();
    for i in 0..200u64 {
        let port = from + (start.wrapping_add(i.wrapping_mul(7_919)) % span) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            return listener.local_addr().map_or(port, |a| a.port());
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a port on 127.0.0.1")
}
