//! A bound on the calls of one organization that are in flight at once, so
//! that one tenant (a row lock held on its organization, a burst of its
//! creates) cannot take every place among the calls in flight and every
//! database connection from the others.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use uuid::Uuid;

use crate::domain::DomainError;

#[derive(Clone, Debug)]
pub struct OrganizationGate {
    limit: usize,
    in_flight: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// A place among an organization's calls in flight, given back on drop.
#[derive(Debug)]
pub struct Slot {
    gate: OrganizationGate,
    organization_id: Uuid,
}

impl OrganizationGate {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            in_flight: Arc::default(),
        }
    }

    /// A place for one more call of `organization_id`, or
    /// ORGANIZATION_OVERLOADED at once when it has `limit` in flight.
    pub fn enter(&self, organization_id: Uuid) -> Result<Slot, DomainError> {
        let mut in_flight = self
            .in_flight
            .lock()
            .expect("the gate's lock is never poisoned");
        let count = in_flight.entry(organization_id).or_default();
        if *count >= self.limit {
            return Err(DomainError::OrganizationOverloaded { limit: self.limit });
        }
        *count += 1;
        Ok(Slot {
            gate: self.clone(),
            organization_id,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut in_flight = self
            .gate
            .in_flight
            .lock()
            .expect("the gate's lock is never poisoned");
        if let Some(count) = in_flight.get_mut(&self.organization_id) {
            *count -= 1;
            if *count == 0 {
                in_flight.remove(&self.organization_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organization_gets_at_most_its_limit_and_others_are_not_counted() {
        let gate = OrganizationGate::new(2);
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let first = gate.enter(a).unwrap();
        let _second = gate.enter(a).unwrap();
        assert!(gate.enter(a).is_err());
        let _other = gate.enter(b).unwrap();
        drop(first);
        let _again = gate.enter(a).unwrap();
    }

    #[test]
    fn slots_leave_no_entry_behind() {
        let gate = OrganizationGate::new(1);
        drop(gate.enter(Uuid::now_v7()).unwrap());
        assert!(gate.in_flight.lock().unwrap().is_empty());
    }
}
