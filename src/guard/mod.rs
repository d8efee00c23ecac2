//! What a client must not be able to do to a replica, whoever it is:
//! hold unbounded memory with request bodies (`budget.rs`: one byte budget
//! for every body being read, and a deadline for a body to arrive), or
//! hold connections open without end (`connections.rs`: a cap on open
//! connections and an idle timeout). Authentication before a body is read
//! is the transports' part (`grpc::authenticated`, the HTTP gateway).

mod budget;
mod connections;

pub use budget::{BodyBudget, BodyGuardLayer};
pub use connections::{ConnectionLimits, GuardedListener, GuardedStream};
