//! Each RPC, one call in flight, `calls / rounds` times a round: its
//! latencies and the CPU the server and PostgreSQL used for it (sampled
//! around each call, so the harness's own reading of /proc between calls
//! is not counted).

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tonic::{Request, Status, transport::Channel};
use workspace_service::proto::{
    AddWorkspaceMemberRequest, CreateWorkspaceRequest, DeleteWorkspaceRequest, GetWorkspaceRequest,
    ListWorkspaceMembersRequest, ListWorkspacesRequest, RemoveWorkspaceMemberRequest, Role,
    UpdateWorkspaceMemberRequest, UpdateWorkspaceRequest,
    workspace_service_client::WorkspaceServiceClient,
};

use crate::{
    cpu::{Cpu, Sample},
    load,
};

/// What one RPC's calls saw.
pub struct Measured {
    pub rpc: String,
    pub latencies: Vec<Duration>,
    pub errors: BTreeMap<String, usize>,
    pub cpu: Cpu,
}

impl Measured {
    fn new(rpc: &str) -> Self {
        Measured {
            rpc: rpc.to_owned(),
            latencies: Vec::new(),
            errors: BTreeMap::new(),
            cpu: Cpu::default(),
        }
    }

    /// Adds another round of the same RPC.
    pub fn absorb(&mut self, round: Measured) {
        self.latencies.extend(round.latencies);
        for (code, count) in round.errors {
            *self.errors.entry(code).or_default() += count;
        }
        self.cpu.server += round.cpu.server;
        self.cpu.database += round.cpu.database;
        self.cpu.all_postgres += round.cpu.all_postgres;
    }

    pub fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted.get(at).copied().unwrap_or_default()
    }

    /// Mean CPU per successful call.
    pub fn per_call(&self, cpu: Duration) -> Duration {
        cpu / self.latencies.len().max(1) as u32
    }
}

/// The running server, and who calls it.
pub struct Target {
    pub channel: Channel,
    pub pid: u32,
    /// PostgreSQL's database name; None on SQLite.
    pub database: Option<String>,
    pub owner_token: String,
    pub member_token: String,
    /// Calls of each RPC over all rounds.
    pub calls: usize,
    pub rounds: usize,
    /// Where each caller's walk through the pages is (its page token).
    pub walks: Mutex<BTreeMap<String, String>>,
}

impl Target {
    /// The calls of `round`: their numbers among all rounds'.
    fn range(&self, round: usize) -> std::ops::Range<usize> {
        let each = self.calls / self.rounds;
        round * each..(round + 1) * each
    }

    fn client(&self) -> WorkspaceServiceClient<Channel> {
        WorkspaceServiceClient::new(self.channel.clone())
    }

    /// One call of `into`, timed, with the CPU it cost.
    async fn call<T>(&self, into: &mut Measured, call: impl Future<Output = Result<T, Status>>) {
        let database = self.database.as_deref();
        let before = Sample::now(self.pid, database);
        let sent = Instant::now();
        let outcome = call.await;
        let took = sent.elapsed();
        let used = before.until(&Sample::now(self.pid, database));
        match outcome {
            Ok(_) => {
                into.latencies.push(took);
                into.cpu.server += used.server;
                into.cpu.database += used.database;
                into.cpu.all_postgres += used.all_postgres;
            }
            Err(status) => {
                *into
                    .errors
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1
            }
        }
    }
}

fn authed<T>(token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    let bearer = format!("Bearer {token}").parse().expect("an ASCII token");
    request.metadata_mut().insert("authorization", bearer);
    request
}

/// Odd workspace `i` of a block of `calls` (block 0: read, 1: updated,
/// 2: deleted): in one of the OWNER's organizations.
fn odd(block: usize, calls: usize, i: usize) -> String {
    load::workspace(2 * (block * calls + i) as u64 + 1).to_string()
}

/// Every RPC in turn: reads, then writes, DeleteWorkspace last.
pub async fn every_rpc(t: &Target, round: usize, member_of: u64) -> Vec<Measured> {
    let mut out = reads(t, round).await;
    let owner = "OWNER of 1,000 organizations";
    out.extend(lists(t, round, owner, &t.owner_token).await);
    let member = format!("MEMBER of {member_of} workspaces + ADMIN of 5 organizations");
    out.extend(lists(t, round, &member, &t.member_token).await);
    out.extend(writes(t, round).await);
    out.extend(members(t, round).await);
    out.push(deletes(t, round).await);
    out
}

async fn reads(t: &Target, round: usize) -> Vec<Measured> {
    let (mut get, mut members) = (
        Measured::new("GetWorkspace"),
        Measured::new("ListWorkspaceMembers"),
    );
    for i in t.range(round) {
        let id = odd(0, t.calls, i);
        let request = authed(&t.owner_token, GetWorkspaceRequest { id: id.clone() });
        t.call(&mut get, t.client().get_workspace(request)).await;
        let message = ListWorkspaceMembersRequest {
            workspace_id: id,
            ..Default::default()
        };
        let request = authed(&t.owner_token, message);
        t.call(&mut members, t.client().list_workspace_members(request))
            .await;
    }
    vec![get, members]
}

/// The first page (default size) again and again, then pages walking on
/// by their tokens.
async fn lists(t: &Target, round: usize, who: &str, token: &str) -> Vec<Measured> {
    let mut first = Measured::new(&format!("ListWorkspaces, {who}: first page"));
    let mut next = Measured::new(&format!("ListWorkspaces, {who}: next pages"));
    for _ in t.range(round) {
        let request = authed(token, ListWorkspacesRequest::default());
        t.call(&mut first, t.client().list_workspaces(request))
            .await;
    }
    let walked = t.walks.lock().unwrap().get(who).cloned();
    let page_token = Arc::new(Mutex::new(walked.unwrap_or_default()));
    for _ in t.range(round) {
        let message = ListWorkspacesRequest {
            page_token: page_token.lock().unwrap().clone(),
            ..Default::default()
        };
        let request = authed(token, message);
        let mut client = t.client();
        let walk = page_token.clone();
        let call = async move {
            let page = client.list_workspaces(request).await?.into_inner();
            *walk.lock().unwrap() = page.next_page_token;
            Ok::<_, Status>(())
        };
        t.call(&mut next, call).await;
    }
    let walked = page_token.lock().unwrap().clone();
    t.walks.lock().unwrap().insert(who.to_owned(), walked);
    vec![first, next]
}

async fn writes(t: &Target, round: usize) -> Vec<Measured> {
    let mut create = Measured::new("CreateWorkspace (with a request_id)");
    let mut update = Measured::new("UpdateWorkspace");
    let organization_id = load::organization(1).to_string();
    for i in t.range(round) {
        let message = CreateWorkspaceRequest {
            organization_id: organization_id.clone(),
            name: format!("growth new {i}"),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        let request = authed(&t.owner_token, message);
        t.call(&mut create, t.client().create_workspace(request))
            .await;
        let message = UpdateWorkspaceRequest {
            id: odd(1, t.calls, i),
            name: format!("growth renamed {i}"),
            ..Default::default()
        };
        let request = authed(&t.owner_token, message);
        t.call(&mut update, t.client().update_workspace(request))
            .await;
    }
    vec![create, update]
}

/// The GUEST added to workspace 1, made ADMIN, removed, in turn.
async fn members(t: &Target, round: usize) -> Vec<Measured> {
    let mut add = Measured::new("AddWorkspaceMember");
    let mut update = Measured::new("UpdateWorkspaceMember");
    let mut remove = Measured::new("RemoveWorkspaceMember");
    let (workspace_id, user_id) = (load::workspace(1).to_string(), load::GUEST.to_string());
    for _ in t.range(round) {
        let message = AddWorkspaceMemberRequest {
            workspace_id: workspace_id.clone(),
            user_id: user_id.clone(),
            role: Role::WorkspaceMember as i32,
        };
        let request = authed(&t.owner_token, message);
        t.call(&mut add, t.client().add_workspace_member(request))
            .await;
        let message = UpdateWorkspaceMemberRequest {
            workspace_id: workspace_id.clone(),
            user_id: user_id.clone(),
            role: Role::WorkspaceAdmin as i32,
        };
        let request = authed(&t.owner_token, message);
        t.call(&mut update, t.client().update_workspace_member(request))
            .await;
        let message = RemoveWorkspaceMemberRequest {
            workspace_id: workspace_id.clone(),
            user_id: user_id.clone(),
        };
        let request = authed(&t.owner_token, message);
        t.call(&mut remove, t.client().remove_workspace_member(request))
            .await;
    }
    vec![add, update, remove]
}

/// Odd workspaces of the third block, each with its idempotency record.
async fn deletes(t: &Target, round: usize) -> Measured {
    let mut delete = Measured::new("DeleteWorkspace");
    for i in t.range(round) {
        let message = DeleteWorkspaceRequest {
            id: odd(2, t.calls, i),
            ..Default::default()
        };
        let request = authed(&t.owner_token, message);
        t.call(&mut delete, t.client().delete_workspace(request))
            .await;
    }
    delete
}

/// The servers left alone for `seconds`, together: what each and its
/// database used.
pub async fn idle(targets: &[Target], seconds: u64) -> Vec<Cpu> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sample = || {
        targets
            .iter()
            .map(|t| Sample::now(t.pid, t.database.as_deref()))
            .collect::<Vec<_>>()
    };
    let before = sample();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    before
        .iter()
        .zip(sample())
        .map(|(b, a)| b.until(&a))
        .collect()
}
