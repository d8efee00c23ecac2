//! Three service processes on one PostgreSQL database, as a Deployment with
//! three replicas runs: they start together (one migrates, the others
//! wait), and calls raced across them keep every promise, because the
//! database decides: one workspace per name, never more than the plan's
//! limit, one workspace per request id.

mod common;

use std::collections::HashSet;

use common::{
    FreshPostgres, Org, PlanSpec, TestApp, authed, named, process::ServiceProcess, spawn_app_at,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tonic::{Code, transport::Channel};
use uuid::Uuid;
use workspace_service::{
    proto::{CreateWorkspaceRequest, Workspace, workspace_service_client::WorkspaceServiceClient},
    storage::entities::{idempotency_record, workspace_membership},
};

/// Three replicas on a fresh database, started at the same moment, and an
/// in-process app on the same database for fixtures.
struct Cluster {
    replicas: Vec<ServiceProcess>,
    channels: Vec<Channel>,
    fixtures: TestApp,
    _database: FreshPostgres,
}

impl Cluster {
    async fn start() -> Option<Self> {
        let database = FreshPostgres::create().await?;
        let env = [
            ("DATABASE_URL", database.url.as_str()),
            ("SEED_DEMO", "false"),
            ("DATABASE_MAX_CONNECTIONS", "8"),
            // The races are the subject, not the per-organization gate: on
            // a loaded machine it shed one of 33 calls a replica now and
            // then (RESOURCE_EXHAUSTED beside 98 ALREADY_EXISTS).
            ("MAX_CONCURRENT_CALLS_PER_ORGANIZATION", "1000"),
        ];
        // Together, on an empty database: the migrations race too.
        let replicas = futures::future::join_all((0..3).map(|_| ServiceProcess::start(&env))).await;
        let mut channels = Vec::new();
        for replica in &replicas {
            channels.push(replica.channel().await);
        }
        let fixtures = spawn_app_at(database.url.clone()).await;
        Some(Self {
            replicas,
            channels,
            fixtures,
            _database: database,
        })
    }

    /// `count` creates at once, the i-th through replica i % 3.
    async fn race(
        &self,
        token: &str,
        count: usize,
        request: impl Fn(usize) -> CreateWorkspaceRequest,
    ) -> Vec<Result<Workspace, tonic::Status>> {
        let calls = (0..count).map(|i| {
            let mut client = WorkspaceServiceClient::new(self.channels[i % 3].clone());
            let request = authed(token, request(i));
            async move {
                client
                    .create_workspace(request)
                    .await
                    .map(|r| r.into_inner())
            }
        });
        futures::future::join_all(calls).await
    }

    /// Workspaces of `org` (each asserted whole: its OWNER membership,
    /// the counter matching), all their memberships and their idempotency
    /// records.
    async fn stored(&self, org: &Org) -> (usize, u64, u64) {
        let storage = &self.fixtures.storage;
        let ids: Vec<Uuid> = common::assert_whole(storage, org)
            .await
            .into_iter()
            .map(|w| w.id)
            .collect();
        let db = storage.connection();
        let memberships = workspace_membership::Entity::find()
            .filter(workspace_membership::Column::WorkspaceId.is_in(ids.clone()))
            .count(db)
            .await
            .unwrap();
        let records = idempotency_record::Entity::find()
            .filter(idempotency_record::Column::WorkspaceId.is_in(ids.clone()))
            .count(db)
            .await
            .unwrap();
        (ids.len(), memberships, records)
    }
}

fn codes(results: &[Result<Workspace, tonic::Status>]) -> Vec<(Code, usize)> {
    let mut counts: Vec<(Code, usize)> = Vec::new();
    for result in results {
        let code = result.as_ref().map_or_else(|s| s.code(), |_| Code::Ok);
        match counts.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => counts.push((code, 1)),
        }
    }
    counts.sort_by_key(|(code, _)| *code as i32);
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_race_on_names_limits_and_request_ids() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    assert_eq!(cluster.replicas.len(), 3);

    // 100 creates of one name: exactly one workspace.
    let org = cluster.fixtures.organization(PlanSpec::default()).await;
    let results = cluster
        .race(&org.owner.token, 100, |_| named(&org, "Contested name"))
        .await;
    assert_eq!(
        codes(&results),
        [(Code::Ok, 1), (Code::AlreadyExists, 99)],
        "{:?}",
        results.iter().find(|r| r.is_err())
    );
    assert_eq!(cluster.stored(&org).await, (1, 1, 0));

    // A limit of 10 and 100 creates of different names: exactly 10.
    let limited = cluster
        .fixtures
        .organization(PlanSpec::with_limit(10))
        .await;
    let results = cluster
        .race(&limited.owner.token, 100, |i| {
            named(&limited, &format!("Workspace {i}"))
        })
        .await;
    assert_eq!(
        codes(&results),
        [(Code::Ok, 10), (Code::ResourceExhausted, 90)]
    );
    assert_eq!(cluster.stored(&limited).await, (10, 10, 0));

    // One request id retried 30 times at once across the replicas: one
    // workspace, and every call answers with it.
    let retried = cluster.fixtures.organization(PlanSpec::default()).await;
    let request = CreateWorkspaceRequest {
        request_id: Uuid::new_v4().to_string(),
        ..named(&retried, "Retried")
    };
    let results = cluster
        .race(&retried.owner.token, 30, |_| request.clone())
        .await;
    let ids: HashSet<String> = results
        .into_iter()
        .map(|r| r.expect("every retry succeeds").id)
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(cluster.stored(&retried).await, (1, 1, 1));

    // Each replica served: the race really was spread.
    for replica in &cluster.replicas {
        let calls = replica
            .logs()
            .iter()
            .filter(|line| line.contains("CreateWorkspace"))
            .count();
        assert!(calls > 0, "a replica served no call");
    }
}
