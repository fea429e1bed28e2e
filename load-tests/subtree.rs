//! Subtree, children and ancestor queries on a tree of 100,000 users, both wide and deep.
//!
//! `cargo run --release --example subtree [database-url]` (default: a fresh SQLite file in a
//! temporary directory; give `mysql://root@127.0.0.1:3306/<empty db>` for MySQL). Prints the
//! median and worst time of each query over repeated runs. A figure, never a pass/fail test.

use std::time::{Duration, Instant};

use nashub::domain::{ClientStatus, Currency, Role, UserStatus, new_id, now_ms};
use nashub::store::{ClientRow, Store, StoreOptions, UserFilter, UserRow};

const AGENTS: usize = 100;
const SUB_AGENTS: usize = 10;
const PLAYERS_PER_SUB_AGENT: usize = 99;
const DEEP_CHAIN: usize = 200;
const RUNS: usize = 25;

fn user(client: &str, parent: Option<&UserRow>, role: Role, n: usize) -> UserRow {
    let id = new_id();
    let (path, depth) = match parent {
        Some(p) => (format!("{}{id}/", p.path), p.depth + 1),
        None => (format!("/{id}/"), 0),
    };
    UserRow {
        id,
        client_id: Some(client.to_owned()),
        login_scope: client.to_owned(),
        parent_id: parent.map(|p| p.id.clone()),
        path,
        depth,
        role,
        username: format!("u{n}"),
        password_hash: "-".into(),
        status: UserStatus::Active,
        created_at: now_ms(),
    }
}

async fn time<T, F, Fut>(name: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut samples: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        std::hint::black_box(f().await);
        samples.push(start.elapsed());
    }
    samples.sort();
    println!(
        "{name:<58} median {:>9.3} ms   max {:>9.3} ms",
        samples[RUNS / 2].as_secs_f64() * 1e3,
        samples[RUNS - 1].as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = Store::connect(&StoreOptions {
        url: url.clone(),
        max_connections: 4,
        acquire_timeout: std::time::Duration::from_secs(30),
        group_commit: Default::default(),
        wal_sync_faults: Default::default(),
    })
    .await?;
    let client = ClientRow {
        id: new_id(),
        code: format!("bench{}", &new_id()[..8]),
        name: "Bench".into(),
        currency: Currency::parse("USD", 2).expect("a currency"),
        status: ClientStatus::Active,
        created_at: now_ms(),
    };
    store.insert_client(&client, &[]).await?;
    let cid = client.id.as_str();

    let started = Instant::now();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    let root = user(cid, None, Role::ClientAdmin, next());
    let mut batch = vec![root.clone()];
    let mut agents = Vec::new();
    let mut sub_agents = Vec::new();
    for _ in 0..AGENTS {
        let agent = user(cid, Some(&root), Role::Agent, next());
        for _ in 0..SUB_AGENTS {
            let sub = user(cid, Some(&agent), Role::Agent, next());
            for _ in 0..PLAYERS_PER_SUB_AGENT {
                batch.push(user(cid, Some(&sub), Role::Player, next()));
            }
            batch.push(sub.clone());
            sub_agents.push(sub);
        }
        batch.push(agent.clone());
        agents.push(agent);
    }
    // A deep chain of agents under the first agent.
    let mut parent = agents[0].clone();
    let mut chain = Vec::new();
    for _ in 0..DEEP_CHAIN {
        let a = user(cid, Some(&parent), Role::Agent, next());
        batch.push(a.clone());
        chain.push(a.clone());
        parent = a;
    }
    let total = batch.len();
    // Parents before children (foreign key): sort by depth.
    batch.sort_by_key(|u| u.depth);
    for part in batch.chunks(5000) {
        store.insert_users_bulk(part).await?;
    }
    println!(
        "{} on {}: {total} users ({AGENTS} agents × {SUB_AGENTS} sub-agents × {PLAYERS_PER_SUB_AGENT} players, plus a chain {DEEP_CHAIN} deep) inserted in {:.1} s",
        store.backend_name(),
        nashub::config::redact_url(&url),
        started.elapsed().as_secs_f64()
    );

    let deepest = chain.last().unwrap().clone();
    let mid = chain[DEEP_CHAIN / 2].clone();
    let count = store.subtree_count(&root.path).await?;
    assert_eq!(count as usize, total - 1);
    time("subtree count, whole client (≈100k rows)", || {
        store.subtree_count(&root.path)
    })
    .await;
    time("subtree count, one agent (≈1k rows + chain)", || {
        store.subtree_count(&agents[1].path)
    })
    .await;
    time("subtree first page (200) of the root", || {
        store.subtree(&root.path, None, 200)
    })
    .await;
    let far = &sub_agents[sub_agents.len() / 2].path;
    time(
        "subtree page (200) from the middle of the root's tree",
        || store.subtree(&root.path, Some(far), 200),
    )
    .await;
    time("subtree page (200) of one agent", || {
        store.subtree(&agents[1].path, None, 200)
    })
    .await;
    time(
        "subtree page (200) of the deep chain's middle (depth 101)",
        || store.subtree(&mid.path, None, 200),
    )
    .await;
    time("children page (200) of the root (100 agents)", || {
        store.children(&root.id, None, 200)
    })
    .await;
    time("children page (200) of a sub-agent (99 players)", || {
        store.children(&sub_agents[7].id, None, 200)
    })
    .await;
    let ids: Vec<String> = deepest
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    time(
        "ancestors of the deepest user (201 ids by primary key)",
        || {
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            let store = store.clone();
            async move { store.users_by_ids(&refs).await }
        },
    )
    .await;
    let filter = UserFilter {
        client_id: Some(cid.to_owned()),
        under_path: Some(agents[2].path.clone()),
        role: Some(Role::Player),
        limit: 200,
        ..UserFilter::default()
    };
    time(
        "list users of an agent's subtree, role=player, page 200",
        || store.list_users(&filter),
    )
    .await;
    Ok(())
}
