//! A bound on the write calls of one organization in flight at once,
//! so that one tenant (a row lock held on its organization, a burst of its
//! creates) cannot take every place among the calls in flight and every
//! database connection from the others. A create beyond the bound waits a
//! moment for a place (creates of one organization queue on its row lock
//! anyway, so a burst only smooths out), then is refused.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::domain::DomainError;

/// How long a create waits for a place among its organization's.
const WAIT_FOR_A_PLACE: Duration = Duration::from_millis(250);

#[derive(Clone, Debug)]
pub struct OrganizationGate {
    limit: usize,
    places: Arc<Mutex<HashMap<Uuid, Arc<Semaphore>>>>,
}

/// A place among an organization's calls in flight, given back on drop.
#[derive(Debug)]
pub struct Slot {
    gate: OrganizationGate,
    organization_id: Uuid,
    permit: Option<OwnedSemaphorePermit>,
}

impl OrganizationGate {
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            places: Arc::default(),
        }
    }

    /// A place for one more call of `organization_id`, waiting up to a
    /// quarter of a second; ORGANIZATION_OVERLOADED after that.
    pub async fn enter(&self, organization_id: Uuid) -> Result<Slot, DomainError> {
        let places = self
            .places
            .lock()
            .expect("the gate's lock is never poisoned")
            .entry(organization_id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.limit)))
            .clone();
        let waited = tokio::time::timeout(WAIT_FOR_A_PLACE, places.acquire_owned()).await;
        let slot = |permit| Slot {
            gate: self.clone(),
            organization_id,
            permit: Some(permit),
        };
        match waited {
            Ok(Ok(permit)) => Ok(slot(permit)),
            _ => {
                // The timed-out wait took its clone of the semaphore with
                // it: leave no entry behind for an organization nobody
                // waits on.
                self.tidy(organization_id);
                Err(DomainError::OrganizationOverloaded { limit: self.limit })
            }
        }
    }

    /// Removes the organization's entry when nobody holds or awaits it.
    fn tidy(&self, organization_id: Uuid) {
        let mut places = self
            .places
            .lock()
            .expect("the gate's lock is never poisoned");
        if let Some(semaphore) = places.get(&organization_id)
            && Arc::strong_count(semaphore) == 1
            && semaphore.available_permits() == self.limit
        {
            places.remove(&organization_id);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The permit (and with it the semaphore's clone) goes first.
        self.permit.take();
        self.gate.tidy(self.organization_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_organization_gets_at_most_its_limit_and_others_are_not_counted() {
        let gate = OrganizationGate::new(2);
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let first = gate.enter(a).await.unwrap();
        let _second = gate.enter(a).await.unwrap();
        assert!(gate.enter(a).await.is_err());
        let _other = gate.enter(b).await.unwrap();
        drop(first);
        let _again = gate.enter(a).await.unwrap();
    }

    #[tokio::test]
    async fn a_call_waits_a_moment_for_a_place() {
        let gate = OrganizationGate::new(1);
        let a = Uuid::now_v7();
        let first = gate.enter(a).await.unwrap();
        let releaser = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(first);
        });
        gate.enter(a).await.expect("a place freed while waiting");
        releaser.await.unwrap();
    }

    #[tokio::test]
    async fn slots_leave_no_entry_behind() {
        let gate = OrganizationGate::new(1);
        let a = Uuid::now_v7();
        let held = gate.enter(a).await.unwrap();
        assert!(gate.enter(a).await.is_err());
        drop(held);
        assert!(gate.places.lock().unwrap().is_empty());
    }
}
