//! Report latency over generated data, and the CSV history stream (issue 17).
//!
//!     cargo build --release && cargo run --release --example reports_bench -- [options]
//!
//! For each backend (SQLite; MariaDB with `--mysql URL` or `HUB_TEST_MYSQL_URL`) it starts a
//! release `nashub serve`, creates one client over HTTP, then writes straight into the database
//! what the hub's upkeep would hold for `--postings` postings (two per entry) over `--days`
//! days: `--players` players under `--agents` agents in a 4-level tree, the `report_money` and
//! `report_rounds` rows of those entries (aggregated per hour as the ledger does; the journal
//! rows themselves are not written: reports never read them). Then each report for the last 30
//! days at day granularity, once (its time printed apart: a cold cache), then `--requests` times
//! in turn: p50 and p99 over HTTP. Then one player
//! with `--history` rounds: the CSV history streamed (rows/s and the hub's peak RSS before and
//! after). With `REPORTS_BENCH_KEEP` set, the databases are kept (their names are printed).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "bench-admin-password";
const HOUR_MS: i64 = 3_600_000;

struct Args {
    players: usize,
    agents: usize,
    postings: u64,
    days: i64,
    requests: usize,
    history: usize,
    mysql: Option<String>,
    sqlite: bool,
}

fn args() -> Args {
    let mut a = Args {
        players: 100_000,
        agents: 200,
        postings: 10_000_000,
        days: 90,
        requests: 50,
        history: 1_000_000,
        mysql: std::env::var("HUB_TEST_MYSQL_URL").ok(),
        sqlite: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("flag value");
        match flag.as_str() {
            "--players" => a.players = value().parse().unwrap(),
            "--agents" => a.agents = value().parse().unwrap(),
            "--postings" => a.postings = value().parse().unwrap(),
            "--days" => a.days = value().parse().unwrap(),
            "--requests" => a.requests = value().parse().unwrap(),
            "--history" => a.history = value().parse().unwrap(),
            "--mysql" => a.mysql = Some(value()),
            "--no-mysql" => a.mysql = None,
            "--no-sqlite" => a.sqlite = false,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

enum Db {
    Sqlite(sqlx::SqlitePool),
    MySql(sqlx::MySqlPool),
}

impl Db {
    async fn exec(&self, sql: String) {
        let sql = sqlx::AssertSqlSafe(sql);
        match self {
            Db::Sqlite(p) => {
                sqlx::raw_sql(sql).execute(p).await.unwrap();
            }
            Db::MySql(p) => {
                sqlx::raw_sql(sql).execute(p).await.unwrap();
            }
        }
    }
}

/// Multi-row inserts of at most 2,000 rows, each group in one transaction.
struct Inserter<'a> {
    db: &'a Db,
    head: &'static str,
    rows: Vec<String>,
    written: u64,
}

impl<'a> Inserter<'a> {
    fn new(db: &'a Db, head: &'static str) -> Self {
        Self {
            db,
            head,
            rows: Vec::new(),
            written: 0,
        }
    }

    async fn push(&mut self, row: String) {
        self.rows.push(row);
        if self.rows.len() >= 2000 {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        self.written += self.rows.len() as u64;
        let sql = format!("{} VALUES {}", self.head, self.rows.join(","));
        self.rows.clear();
        self.db.exec(sql).await;
    }
}

struct Hub {
    child: Child,
    base: String,
}

impl Hub {
    fn start(env: &[(String, String)]) -> Hub {
        let exe = std::env::current_exe().unwrap();
        let bin = exe.parent().unwrap().parent().unwrap().join("nashub");
        assert!(
            bin.exists(),
            "{} is missing: cargo build --release",
            bin.display()
        );
        let mut child = Command::new(bin)
            .arg("serve")
            .envs(env.iter().cloned())
            .env("NASHUB_BIND", "127.0.0.1:0")
            .env("NASHUB_LOG", "warn")
            .env("NASHUB_RATE_LIMIT_PER_USER", "0")
            // The bench logs in as the bootstrap super admin with a password only.
            .env("NASHUB_SECOND_FACTOR_EXEMPT", "admin")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nashub");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(base) = line.strip_prefix("nashub listening on ") {
                    let _ = tx.send(base.to_owned());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("hub starts");
        Hub { child, base }
    }

    /// The hub's peak resident memory so far (kB).
    fn peak_rss_kb(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn uuid(rng: &mut Rng) -> String {
    format!("{:016x}{:016x}", rng.next(), rng.next())
}

/// Users (admin root, agents in 4 levels, players), then the rollup rows hour by hour.
async fn generate(db: &Db, client_id: &str, args: &Args, end: i64) -> (String, String) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = end - args.days * 24 * HOUR_MS;
    let mut users = Inserter::new(
        db,
        "INSERT INTO users (id, client_id, login_scope, parent_id, path, depth, role, username, \
         password_hash, status, created_at, updated_at)",
    );
    let admin = uuid(&mut rng);
    let admin_path = format!("/{admin}/");
    let user_row = |id: &str,
                    parent: Option<&str>,
                    path: &str,
                    depth: usize,
                    role: &str,
                    name: &str,
                    at: i64| {
        format!(
            "('{id}', '{client_id}', '{client_id}', {}, '{path}', {depth}, '{role}', '{name}', 'x', 'active', {at}, {at})",
            parent.map_or("NULL".to_owned(), |p| format!("'{p}'"))
        )
    };
    users
        .push(user_row(
            &admin,
            None,
            &admin_path,
            0,
            "client_admin",
            "benchboss",
            start,
        ))
        .await;
    // 4 levels: 1/20, 3/20, 6/20, 10/20 of the agents, each under one of the level above.
    let mut levels: Vec<Vec<(String, String)>> = vec![vec![(admin.clone(), admin_path)]];
    let shares = [1, 3, 6, 10];
    for (l, share) in shares.iter().enumerate() {
        let n = (args.agents * share / 20).max(1);
        let mut level = Vec::new();
        for i in 0..n {
            let above = &levels[l];
            let (parent, ppath) = &above[rng.below(above.len() as u64) as usize];
            let id = uuid(&mut rng);
            let path = format!("{ppath}{id}/");
            users
                .push(user_row(
                    &id,
                    Some(parent),
                    &path,
                    l + 1,
                    "agent",
                    &format!("ag{l}x{i}"),
                    start,
                ))
                .await;
            level.push((id, path));
        }
        levels.push(level);
    }
    let agents = &levels[3..];
    let mut players = Vec::with_capacity(args.players);
    let mut parents: Vec<String> = Vec::with_capacity(args.players);
    for i in 0..args.players {
        let level = &agents[rng.below(agents.len() as u64) as usize];
        let (parent, ppath) = &level[rng.below(level.len() as u64) as usize];
        let id = uuid(&mut rng);
        let at = start + rng.below((end - start) as u64) as i64;
        users
            .push(user_row(
                &id,
                Some(parent),
                &format!("{ppath}{id}/"),
                5,
                "player",
                &format!("pl{i}"),
                at,
            ))
            .await;
        players.push(id);
        parents.push(parent.clone());
    }
    users.flush().await;
    // The players per agent the hub keeps with its users (migration 0145).
    let mut players_agent = Inserter::new(
        db,
        "INSERT INTO report_players_agent (client_id, agent_id, n)",
    );
    let mut per_agent: std::collections::BTreeMap<&str, i64> = Default::default();
    for p in &parents {
        *per_agent.entry(p.as_str()).or_default() += 1;
    }
    for (agent, n) in per_agent {
        players_agent
            .push(format!("('{client_id}', '{agent}', {n})"))
            .await;
    }
    players_agent.flush().await;
    // The players registered per hour the hub keeps with its users (migration 0170).
    db.exec(format!(
        "INSERT INTO report_counts (client_id, series, bucket, n) \
         SELECT client_id, 'registered', created_at - created_at % 3600000, COUNT(*) FROM users \
         WHERE client_id = '{client_id}' AND role = 'player' \
         GROUP BY client_id, created_at - created_at % 3600000"
    ))
    .await;
    let top_agent = levels[1][0].0.clone();

    let mut money = Inserter::new(
        db,
        "INSERT INTO report_money (client_id, hour, kind, user_id, n, amount)",
    );
    let mut rounds = Inserter::new(
        db,
        "INSERT INTO report_rounds (client_id, hour, provider, user_id, rounds, stake, net)",
    );
    // The client-level rollups the feed would hold (migration 0111), for the client's zone,
    // UTC: money and rounds per hour, distinct players per hour/day/week/month, first deposits.
    let mut money_client = Inserter::new(
        db,
        "INSERT INTO report_money_client (client_id, hour, kind, n, amount)",
    );
    let mut rounds_client = Inserter::new(
        db,
        "INSERT INTO report_rounds_client (client_id, hour, provider, rounds, stake, net)",
    );
    let mut marks = Inserter::new(
        db,
        "INSERT INTO report_marks (client_id, series, bucket, user_id)",
    );
    let mut counts = Inserter::new(
        db,
        "INSERT INTO report_counts (client_id, series, bucket, n)",
    );
    let mut firsts = Inserter::new(
        db,
        "INSERT INTO report_first_deposits (client_id, user_id, hour)",
    );
    // The agent rollups (migration 0113): players' money and rounds per UTC day and parent.
    let mut money_agent = Inserter::new(
        db,
        "INSERT INTO report_money_agent (client_id, day, agent_id, player, kind, n, amount)",
    );
    let mut rounds_agent = Inserter::new(
        db,
        "INSERT INTO report_rounds_agent (client_id, day, agent_id, provider, rounds, stake, net)",
    );
    // Distinct users per agent (migration 0131): active/depositing marks and first deposits
    // counted to each player's parent.
    let mut counts_agent = Inserter::new(
        db,
        "INSERT INTO report_counts_agent (client_id, series, agent_id, bucket, n)",
    );
    let per_parent = |set: &mut dyn Iterator<Item = usize>| {
        let mut out: std::collections::BTreeMap<&str, i64> = Default::default();
        for p in set {
            *out.entry(parents[p].as_str()).or_default() += 1;
        }
        out
    };
    let mut agent_money: std::collections::BTreeMap<(i64, &str, &str), (i64, i64)> =
        Default::default();
    let mut agent_rounds: std::collections::BTreeMap<(i64, &str, &str), (i64, i64, i64)> =
        Default::default();
    let utc = chrono_tz::Tz::UTC;
    use nashub::domain::calendar::{Granularity, bucket_start};
    // Open buckets of the day/week/month series: (what, grain) -> (bucket, players).
    let mut open: std::collections::BTreeMap<
        (String, Granularity),
        (i64, std::collections::HashSet<usize>),
    > = Default::default();
    let mut first_deposit: Vec<Option<i64>> = vec![None; players.len()];
    // The day spans (migration 0135) of the active and depositing day marks, which close
    // in day order: (what, day, previous day) -> users, and each user's last day.
    let mut spans: std::collections::BTreeMap<(String, i64, i64), i64> = Default::default();
    let mut last_day: std::collections::BTreeMap<(String, usize), i64> = Default::default();
    let mut span =
        |what: &str, g: Granularity, day: i64, set: &std::collections::HashSet<usize>| {
            if g != Granularity::Day || !(what == "active" || what == "depositing") {
                return;
            }
            for &q in set {
                let prev = last_day.insert((what.to_owned(), q), day).unwrap_or(-1);
                *spans.entry((what.to_owned(), day, prev)).or_default() += 1;
            }
        };
    let hours = (end - start) / HOUR_MS;
    let entries = args.postings / 2;
    let per_hour = entries / hours as u64;
    let kinds = [
        (10, "deposit"),
        (5, "withdrawal"),
        (40, "game_result"),
        (20, "provider_hold"),
        (20, "provider_credit"),
        (5, "adjustment"),
    ];
    for h in 0..hours {
        let hour = start + h * HOUR_MS;
        let mut m: std::collections::HashMap<(usize, &str), (i64, i64)> = Default::default();
        let mut r: std::collections::HashMap<(usize, &str), (i64, i64, i64)> = Default::default();
        for _ in 0..per_hour {
            let p = rng.below(players.len() as u64) as usize;
            let mut pick = rng.below(100) as i64;
            let kind = kinds
                .iter()
                .find(|(w, _)| {
                    pick -= w;
                    pick < 0
                })
                .unwrap()
                .1;
            let amount = 100 + rng.below(100_000) as i64;
            let signed = match kind {
                "withdrawal" | "provider_hold" => -amount,
                "game_result" => amount / 2 - rng.below(amount as u64) as i64,
                _ => amount,
            };
            let e = m.entry((p, kind)).or_default();
            e.0 += 1;
            e.1 += signed;
            if kind == "game_result" {
                let provider = if rng.below(2) == 0 {
                    "jdb"
                } else {
                    "luckysports"
                };
                let e = r.entry((p, provider)).or_default();
                e.0 += 1;
                e.1 += amount;
                e.2 += signed;
            }
        }
        let mut by_kind: std::collections::BTreeMap<&str, (i64, i64)> = Default::default();
        let mut by_provider: std::collections::BTreeMap<&str, (i64, i64, i64)> = Default::default();
        let mut active: std::collections::BTreeSet<usize> = Default::default();
        let mut depositing: std::collections::BTreeSet<usize> = Default::default();
        for (&(p, kind), &(n, amount)) in &m {
            let k = by_kind.entry(kind).or_default();
            k.0 += n;
            k.1 += amount;
            active.insert(p);
            if kind == "deposit" {
                depositing.insert(p);
                if first_deposit[p].is_none() {
                    first_deposit[p] = Some(hour);
                }
            }
        }
        let mut played: std::collections::BTreeMap<&str, std::collections::BTreeSet<usize>> =
            Default::default();
        for (&(p, provider), &(n, stake, net)) in &r {
            let k = by_provider.entry(provider).or_default();
            k.0 += n;
            k.1 += stake;
            k.2 += net;
            active.insert(p);
            played.entry(provider).or_default().insert(p);
        }
        let played: Vec<(String, std::collections::BTreeSet<usize>)> = played
            .into_iter()
            .map(|(provider, set)| (format!("players:{provider}"), set))
            .collect();
        for (kind, (n, amount)) in by_kind {
            money_client
                .push(format!("('{client_id}', {hour}, '{kind}', {n}, {amount})"))
                .await;
        }
        for (provider, (n, stake, net)) in by_provider {
            rounds_client
                .push(format!(
                    "('{client_id}', {hour}, '{provider}', {n}, {stake}, {net})"
                ))
                .await;
        }
        let mut all: Vec<(&str, &std::collections::BTreeSet<usize>)> =
            vec![("active", &active), ("depositing", &depositing)];
        all.extend(played.iter().map(|(w, set)| (w.as_str(), set)));
        for (what, set) in all {
            for &p in set {
                marks
                    .push(format!(
                        "('{client_id}', '{what}:h', {hour}, '{}')",
                        players[p]
                    ))
                    .await;
            }
            counts
                .push(format!(
                    "('{client_id}', '{what}:h', {hour}, {})",
                    set.len()
                ))
                .await;
            if what == "active" || what == "depositing" {
                for (agent, n) in per_parent(&mut set.iter().copied()) {
                    counts_agent
                        .push(format!(
                            "('{client_id}', '{what}:h', '{agent}', {hour}, {n})"
                        ))
                        .await;
                }
            }
            for g in [Granularity::Day, Granularity::Week, Granularity::Month] {
                let bucket = bucket_start(hour, utc, g);
                let slot = open
                    .entry((what.to_owned(), g))
                    .or_insert((bucket, Default::default()));
                if slot.0 != bucket {
                    span(what, g, slot.0, &slot.1);
                    let series = nashub::store::report_feed::series(what, g, utc);
                    for &q in &slot.1 {
                        marks
                            .push(format!(
                                "('{client_id}', '{series}', {}, '{}')",
                                slot.0, players[q]
                            ))
                            .await;
                    }
                    counts
                        .push(format!(
                            "('{client_id}', '{series}', {}, {})",
                            slot.0,
                            slot.1.len()
                        ))
                        .await;
                    if what == "active" || what == "depositing" {
                        for (agent, n) in per_parent(&mut slot.1.iter().copied()) {
                            counts_agent
                                .push(format!(
                                    "('{client_id}', '{series}', '{agent}', {}, {n})",
                                    slot.0
                                ))
                                .await;
                        }
                    }
                    *slot = (bucket, Default::default());
                }
                slot.1.extend(set.iter().copied());
            }
        }
        let day = hour - hour.rem_euclid(24 * HOUR_MS);
        for (&(p, kind), &(n, amount)) in &m {
            let e = agent_money
                .entry((day, parents[p].as_str(), kind))
                .or_default();
            e.0 += n;
            e.1 += amount;
        }
        for (&(p, provider), &(n, stake, net)) in &r {
            let e = agent_rounds
                .entry((day, parents[p].as_str(), provider))
                .or_default();
            e.0 += n;
            e.1 += stake;
            e.2 += net;
        }
        for ((p, kind), (n, amount)) in m {
            money
                .push(format!(
                    "('{client_id}', {hour}, '{kind}', '{}', {n}, {amount})",
                    players[p]
                ))
                .await;
        }
        for ((p, provider), (n, stake, net)) in r {
            rounds
                .push(format!(
                    "('{client_id}', {hour}, '{provider}', '{}', {n}, {stake}, {net})",
                    players[p]
                ))
                .await;
        }
    }
    for ((what, g), (bucket, set)) in open {
        span(&what, g, bucket, &set);
        let series = nashub::store::report_feed::series(&what, g, utc);
        for q in &set {
            marks
                .push(format!(
                    "('{client_id}', '{series}', {bucket}, '{}')",
                    players[*q]
                ))
                .await;
        }
        counts
            .push(format!(
                "('{client_id}', '{series}', {bucket}, {})",
                set.len()
            ))
            .await;
        if what == "active" || what == "depositing" {
            for (agent, n) in per_parent(&mut set.iter().copied()) {
                counts_agent
                    .push(format!(
                        "('{client_id}', '{series}', '{agent}', {bucket}, {n})"
                    ))
                    .await;
            }
        }
    }
    for ((day, agent, kind), (n, amount)) in &agent_money {
        money_agent
            .push(format!(
                "('{client_id}', {day}, '{agent}', 1, '{kind}', {n}, {amount})"
            ))
            .await;
    }
    for ((day, agent, provider), (n, stake, net)) in &agent_rounds {
        rounds_agent
            .push(format!(
                "('{client_id}', {day}, '{agent}', '{provider}', {n}, {stake}, {net})"
            ))
            .await;
    }
    let mut first_counts: std::collections::BTreeMap<i64, i64> = Default::default();
    let mut first_agent: std::collections::BTreeMap<(&str, i64), i64> = Default::default();
    for (p, hour) in first_deposit.iter().enumerate() {
        if let Some(hour) = hour {
            firsts
                .push(format!("('{client_id}', '{}', {hour})", players[p]))
                .await;
            *first_counts.entry(*hour).or_default() += 1;
            *first_agent.entry((parents[p].as_str(), *hour)).or_default() += 1;
        }
    }
    for ((agent, hour), n) in first_agent {
        counts_agent
            .push(format!(
                "('{client_id}', 'first_deposit', '{agent}', {hour}, {n})"
            ))
            .await;
    }
    for (hour, n) in first_counts {
        counts
            .push(format!("('{client_id}', 'first_deposit', {hour}, {n})"))
            .await;
    }
    let mut day_spans = Inserter::new(
        db,
        "INSERT INTO report_day_spans (client_id, series, day, prev_day, n)",
    );
    for ((what, day, prev), n) in &spans {
        day_spans
            .push(format!(
                "('{client_id}', '{what}:d:UTC', {day}, {prev}, {n})"
            ))
            .await;
    }
    let mut last_days = Inserter::new(
        db,
        "INSERT INTO report_user_last_day (client_id, series, user_id, day)",
    );
    for ((what, q), day) in &last_day {
        last_days
            .push(format!(
                "('{client_id}', '{what}:d:UTC', '{}', {day})",
                players[*q]
            ))
            .await;
    }
    db.exec(format!(
        "INSERT INTO report_zone_series (client_id, zone, since) VALUES ('{client_id}', 'UTC', 0)"
    ))
    .await;
    for i in [
        &mut money,
        &mut rounds,
        &mut money_client,
        &mut rounds_client,
        &mut marks,
        &mut counts,
        &mut firsts,
        &mut money_agent,
        &mut rounds_agent,
        &mut counts_agent,
        &mut day_spans,
        &mut last_days,
    ] {
        i.flush().await;
    }
    println!(
        "  generated {} users, {} report_money rows, {} report_rounds rows, {} report_marks for {} entries ({} postings)",
        users.written,
        money.written,
        rounds.written,
        marks.written,
        per_hour * hours as u64,
        per_hour * hours as u64 * 2
    );
    (top_agent, players[0].clone())
}

async fn history_rows(db: &Db, client_id: &str, player: &str, n: usize, end: i64) {
    let mut rounds = Inserter::new(
        db,
        "INSERT INTO game_rounds (client_id, provider, round_id, user_id, version, status, net, \
         stake, updated_at, created_at)",
    );
    for i in 0..n {
        let at = end - (n - i) as i64 * 1000;
        rounds
            .push(format!(
                "('{client_id}', 'jdb', 'r{i}', '{player}', 1, 'settled', {}, 100, {at}, {at})",
                (i as i64 % 7) * 50 - 100
            ))
            .await;
    }
    rounds.flush().await;
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn bench(name: &str, env: Vec<(String, String)>, db_url: &str, args: &Args) -> Vec<String> {
    let hub = Hub::start(&env);
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{}/api/v1/auth/login", hub.base))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let client = http
        .post(format!("{}/api/v1/clients", hub.base))
        .bearer_auth(&token)
        .json(&json!({ "code": format!("rb{}", std::process::id()), "name": "Bench", "currency": "USD", "currency_exponent": 2 }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let client_id = client["id"].as_str().unwrap().to_owned();
    let db = if db_url.starts_with("sqlite:") {
        Db::Sqlite(sqlx::SqlitePool::connect(db_url).await.unwrap())
    } else {
        Db::MySql(sqlx::MySqlPool::connect(db_url).await.unwrap())
    };
    let now = chrono::Utc::now().timestamp_millis();
    let end = now - now.rem_euclid(24 * HOUR_MS);
    let t = Instant::now();
    println!("{name}: generating");
    let (agent, player) = generate(&db, &client_id, args, end).await;
    println!("  in {:.0} s", t.elapsed().as_secs_f64());
    if let Db::Sqlite(_) = db {
        // The generation's WAL (~60 MB) copied into the database before the reads, not during
        // them (the hub's checkpointer would, and single requests met its writes: p99s of 70 ms
        // over p50s of 5-30 ms).
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)".to_owned()).await;
    }
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let period = format!(
        "from={}&to={}&granularity=day",
        day(end - 30 * 24 * HOUR_MS),
        day(end)
    );
    let mut lines = Vec::new();
    let reports = [
        ("client-metrics", format!("client_id={client_id}&{period}")),
        (
            "client-metrics (agent subtree)",
            format!("client_id={client_id}&user_id={agent}&{period}"),
        ),
        ("client-revenue", format!("client_id={client_id}&{period}")),
        ("agents", format!("client_id={client_id}&{period}")),
        ("game-stats", format!("client_id={client_id}&{period}")),
        ("provider-stats", format!("client_id={client_id}&{period}")),
        ("platform-overview", period.clone()),
    ];
    for (label, query) in &reports {
        let path = label.split(' ').next().unwrap();
        let url = format!("{}/api/v1/reports/{path}?{query}", hub.base);
        let timed = || async {
            let t = Instant::now();
            let res = http.get(&url).bearer_auth(&token).send().await.unwrap();
            assert_eq!(res.status(), 200, "{label}");
            let _ = res.bytes().await.unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        };
        // The first request meets the database's cache cold (after generation, MariaDB's
        // buffer pool holds the rows last written): shown apart, not inside the percentiles.
        let first = timed().await;
        let mut times = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            times.push(timed().await);
        }
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let line = format!(
            "{name} {label}: 30 days by day, p50 {:.1} ms, p99 {:.1} ms ({} requests after a \
             first of {first:.1} ms)",
            pct(&times, 0.5),
            pct(&times, 0.99),
            times.len()
        );
        println!("  {line}");
        lines.push(line);
    }

    history_rows(&db, &client_id, &player, args.history, now).await;
    let before = hub.peak_rss_kb();
    let t = Instant::now();
    let mut res = http
        .get(format!(
            "{}/api/v1/reports/players/{player}/history?format=csv",
            hub.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (mut bytes, mut newlines) = (0_usize, 0_usize);
    loop {
        match res.chunk().await {
            Ok(Some(chunk)) => {
                bytes += chunk.len();
                newlines += chunk.iter().filter(|b| **b == b'\n').count();
            }
            Ok(None) => break,
            Err(e) => {
                // Reported, not unwrapped: where a stream breaks off says why.
                let line = format!(
                    "{name} history CSV BROKE OFF after {} rows ({bytes} bytes) in {:.2} s: {e}",
                    newlines.saturating_sub(1),
                    t.elapsed().as_secs_f64()
                );
                println!("  {line}");
                lines.push(line);
                return lines;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let rows = newlines.saturating_sub(1);
    let line = format!(
        "{name} history CSV: {rows} rows ({:.0} MB) in {secs:.2} s = {:.0} rows/s; hub peak RSS {} MB before, {} MB after",
        bytes as f64 / 1e6,
        rows as f64 / secs,
        before / 1024,
        hub.peak_rss_kb() / 1024
    );
    println!("  {line}");
    lines.push(line);
    lines
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = args();
    println!(
        "reports_bench: {} players, {} agents, {} postings over {} days, {} requests per report",
        args.players, args.agents, args.postings, args.days, args.requests
    );
    let mut summary = Vec::new();
    if args.sqlite {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            ("NASHUB_DATA_DIR".into(), dir.path().display().to_string()),
            ("NASHUB_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ("NASHUB_PASSWORD_HASH_MEMORY_KIB".into(), "1024".into()),
        ];
        let url = format!("sqlite://{}/nashub.db", dir.path().display());
        summary.extend(bench("sqlite", env, &url, &args).await);
        if std::env::var_os("REPORTS_BENCH_KEEP").is_some() {
            // To EXPLAIN the reports' queries against the generated data.
            println!("kept database {}/nashub.db", dir.keep().display());
        }
    }
    if let Some(url) = &args.mysql {
        let db = format!("nashub_rbench_{}", std::process::id());
        let mut conn = <sqlx::MySqlConnection as sqlx::Connection>::connect(url)
            .await
            .expect("MySQL reachable");
        let create = format!("CREATE DATABASE {db}");
        sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(create))
            .await
            .unwrap();
        let server = url.rsplit_once('/').map_or(url.as_str(), |(s, _)| s);
        let dir = tempfile::tempdir().unwrap();
        let env = vec![
            ("NASHUB_DATA_DIR".into(), dir.path().display().to_string()),
            ("NASHUB_DATABASE_URL".into(), format!("{server}/{db}")),
            ("NASHUB_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ("NASHUB_PASSWORD_HASH_MEMORY_KIB".into(), "1024".into()),
        ];
        summary.extend(bench("mariadb", env, &format!("{server}/{db}"), &args).await);
        if std::env::var_os("REPORTS_BENCH_KEEP").is_some() {
            // To EXPLAIN the reports' queries against the generated data.
            println!("kept database {db}");
        } else {
            let drop = format!("DROP DATABASE {db}");
            sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(drop))
                .await
                .unwrap();
        }
    }
    println!("\nsummary");
    for line in summary {
        println!("  {line}");
    }
}
