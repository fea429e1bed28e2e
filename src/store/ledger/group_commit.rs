//! Group commit: wallet mutations from many users share one database transaction, so the
//! commit (the fsync) is paid once per batch instead of once per mutation. Each caller is
//! answered only after the transaction holding its entry has committed and is on disk (on
//! SQLite the WAL sync of batch N runs while batch N+1 executes: `sqlite_wal_sync.rs`).
//!
//! Batches form by themselves: while one commit is in flight, new entries queue, and the next
//! batch takes up to `max_batch` of them. With `max_wait` above zero a batch that is not full
//! also waits that long for company. `max_batch = 1` is the naive one-commit-per-mutation mode
//! (kept for the benchmark's baseline).
//!
//! Entries are decided and committed in queue order, and each entry's `after_commit` runs in
//! that order right after its commit: a wallet actor can therefore queue a hot wallet's
//! mutations back to back (they share a batch) and its events still leave in commit order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::otel::TraceParent;
use crate::store::types::{
    CommittedBatch, Durable, NewEntry, PostOutcome, StoreError, StoreResult,
};
use crate::store::{Backend, TRANSIENT_RETRIES, WriteTurn, dispatch_backend};

/// Longest the committer keeps the SQLite write turn before letting other writes in.
const TURN_HOLD_MAX: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy)]
pub struct GroupCommitOptions {
    pub max_batch: usize,
    pub max_wait: Duration,
    /// MySQL: longest a lone commit waits for one more when arrivals say one is near
    /// (`commit_linger`; zero: never).
    pub linger: Duration,
}

impl Default for GroupCommitOptions {
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_wait: Duration::ZERO,
            linger: Duration::from_millis(5),
        }
    }
}

/// Runs after the entry's transaction committed, before its caller is answered.
pub type AfterCommit = Box<dyn FnOnce(&PostOutcome) + Send>;

struct Job {
    /// Shared, so a batch can hand it to the SQLite writer thread without copying it.
    entry: Arc<NewEntry>,
    /// Keys the audit chain links of the entry's audit row.
    audit_key: Arc<[u8; 32]>,
    after_commit: Option<AfterCommit>,
    reply: oneshot::Sender<StoreResult<PostOutcome>>,
    /// The poster's trace position (the wallet actor's span; empty while traces are off).
    trace: TraceParent,
    /// When it was posted (`commit_linger` learns the arrival rate from it).
    sent: std::time::Instant,
}

impl Job {
    fn answer(self, result: StoreResult<PostOutcome>) {
        if let (Ok(outcome), Some(after)) = (&result, self.after_commit) {
            after(outcome);
        }
        let _ = self.reply.send(result);
    }
}

/// Unbounded on purpose: senders are HTTP requests already bounded by the server's connection
/// limits, and a bounded queue would need an await that breaks the ordering guarantee.
#[derive(Clone)]
pub struct GroupCommitter {
    queue: mpsc::UnboundedSender<Job>,
    /// Jobs queued and not yet taken into a batch (the SQLite writer syncs inline at 0).
    waiting: Arc<AtomicUsize>,
    /// SQLite with a writer thread: the way past an idle committer.
    direct: Option<Arc<Direct>>,
}

/// In [`Direct::state`]: the committer holds jobs, a batch or answers not yet given.
const COMMITTER_BUSY: usize = 1 << 16;

/// A lone entry posted while the committer is idle goes from the poster's thread straight to
/// the SQLite writer thread, which commits, syncs and answers it: the committer's thread is
/// not woken to pass it on nor to hear it was done (two wake-ups of a third thread per
/// deposit at ordinary rates, issue 22). Order holds: a direct entry is taken only when the
/// committer has answered everything before it, and the writer runs its jobs first come,
/// first served, answering each before the next.
struct Direct {
    backend: Backend,
    /// Entries handed directly and not yet answered (0 or 1), plus [`COMMITTER_BUSY`].
    state: AtomicUsize,
}

impl GroupCommitter {
    pub fn start(backend: Backend, options: GroupCommitOptions) -> Self {
        let max_batch = options.max_batch.max(1);
        let (queue, jobs) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let uses_turn = dispatch_backend!(&backend, b => b.uses_write_turn());
        let direct = (uses_turn && max_batch > 1 && options.max_wait.is_zero()).then(|| {
            Arc::new(Direct {
                backend: backend.clone(),
                state: AtomicUsize::new(COMMITTER_BUSY),
            })
        });
        tokio::spawn(run(
            backend,
            jobs,
            max_batch,
            options.max_wait,
            super::commit_linger::Linger::new(options.linger),
            waiting.clone(),
            direct.clone(),
        ));
        Self {
            queue,
            waiting,
            direct,
        }
    }

    /// Queues one entry now (its place in the order is fixed on return); the future resolves
    /// once it is durable (or refused).
    pub fn post(
        &self,
        entry: Arc<NewEntry>,
        audit_key: Arc<[u8; 32]>,
        after_commit: Option<AfterCommit>,
    ) -> impl Future<Output = StoreResult<PostOutcome>> + use<> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            entry,
            audit_key,
            after_commit,
            reply,
            trace: TraceParent::current(),
            sent: std::time::Instant::now(),
        };
        let queued = match &self.direct {
            Some(direct)
                if self.waiting.load(Ordering::Acquire) == 0
                    && direct
                        .state
                        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok() =>
            {
                let answered = direct.clone();
                hand_to_writer(&direct.backend, job, move || {
                    answered.state.fetch_sub(1, Ordering::AcqRel);
                });
                true
            }
            _ => {
                self.waiting.fetch_add(1, Ordering::Release);
                self.queue.send(job).is_ok()
            }
        };
        async move {
            let stopped = || StoreError::Config("the ledger committer has stopped".into());
            if !queued {
                return Err(stopped());
            }
            answer.await.map_err(|_| stopped())?
        }
    }
}

/// Hands a lone entry to the SQLite writer thread, which commits, syncs and answers it itself,
/// then runs `then`. Its FIFO keeps commit and answer order with any job sent after it.
fn hand_to_writer(backend: &Backend, job: Job, then: impl FnOnce() + Send + 'static) {
    let span = batch_span(std::slice::from_ref(&job));
    let (entry, key) = (job.entry.clone(), job.audit_key.clone());
    // The batch span lasts until the writer thread has answered.
    let in_flight = span.clone();
    let answer: super::sqlite_writer::Answer = Box::new(move |result| {
        job.answer(result.and_then(|mut results| {
            results
                .pop()
                .ok_or_else(|| StoreError::Config("the ledger writer lost an entry".into()))?
        }));
        then();
        drop(in_flight);
    });
    metrics::histogram!(crate::metrics::LEDGER_BATCH_SIZE).record(1.0);
    metrics::counter!(crate::metrics::LEDGER_COMMITS).increment(1);
    // Sent inside the batch span: the writer thread's span is its child.
    span.in_scope(|| dispatch_backend!(backend, b => b.post_and_answer(vec![entry], key, answer)));
}

/// A batch committed but not yet answered: its callers wait for `durable` (the SQLite WAL
/// sync, which runs while the next batch executes).
struct Committed {
    jobs: Vec<(Job, StoreResult<PostOutcome>)>,
    durable: Vec<Durable>,
}

impl Committed {
    /// Waits until the batch is on disk, then answers its callers in order.
    async fn settle(self) {
        let mut jobs = self.jobs;
        for durable in self.durable {
            if durable.await.is_ok() {
                continue;
            }
            // The sync thread is gone (a failed sync stops the process before this): committed
            // but not known to be on disk, so no caller may be told it succeeded. A retry with
            // the same key returns whatever the database kept.
            for (_, result) in &mut jobs {
                if result.is_ok() {
                    *result = Err(StoreError::Config(
                        "the ledger could not confirm the write is durable".into(),
                    ));
                }
            }
        }
        for (job, result) in jobs {
            job.answer(result);
        }
    }
}

async fn settle(done: Option<Committed>) {
    if let Some(done) = done {
        done.settle().await;
    }
}

async fn run(
    backend: Backend,
    mut queue: mpsc::UnboundedReceiver<Job>,
    max: usize,
    wait: Duration,
    mut linger: super::commit_linger::Linger,
    waiting: Arc<AtomicUsize>,
    direct: Option<Arc<Direct>>,
) {
    let took = |n: usize| waiting.fetch_sub(n, Ordering::AcqRel);
    let mut jobs = Vec::with_capacity(max);
    // The previous batch, committed but not yet answered.
    let mut done: Option<Committed> = None;
    // The naive mode (one entry per commit) is the benchmark's baseline of one durable commit
    // per mutation: each waits for its own sync before the next starts.
    let overlap = max > 1;
    // SQLite: this process's write turn, kept from batch to batch while work is queued (taking
    // it costs ~0.7 ms, a fifth of a batch), given back when the queue runs dry or after
    // `TURN_HOLD_MAX`, so other writes (logins, user changes) wait at most that long.
    let mut turn: Option<(WriteTurn, tokio::time::Instant)> = None;
    let uses_turn = dispatch_backend!(&backend, b => b.uses_write_turn());
    // A lone entry handed to the SQLite writer thread, which answers it: resolves when it has.
    let mut handed: Option<oneshot::Receiver<()>> = None;
    loop {
        if done.is_none() {
            if jobs.is_empty() {
                turn = None;
                // Idle: everything taken was answered (or is the writer's, answered in order).
                if let Some(d) = &direct {
                    d.state.fetch_sub(COMMITTER_BUSY, Ordering::AcqRel);
                }
                let n = queue.recv_many(&mut jobs, max).await;
                if let Some(d) = &direct {
                    d.state.fetch_add(COMMITTER_BUSY, Ordering::AcqRel);
                }
                match n {
                    0 => return,
                    n => took(n),
                };
            }
        } else {
            while jobs.len() < max {
                match queue.try_recv() {
                    Ok(job) => {
                        took(1);
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            if jobs.is_empty() || !overlap {
                settle(done.take()).await;
                continue;
            }
        }
        // Whatever queued while the writer worked on a handed entry forms the next batch
        // (resolved already, at ordinary rates: no wake-up then).
        if let Some(finished) = handed.take() {
            let _ = finished.await;
            while jobs.len() < max {
                match queue.try_recv() {
                    Ok(job) => {
                        took(1);
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
        }
        // A lone entry at an idle committer (ordinary rates): the writer thread commits it,
        // syncs and answers it itself, so this thread is not woken for it at all. Its FIFO
        // keeps commit and answer order with any batch sent after it. Issue 22.
        if uses_turn
            && overlap
            && wait.is_zero()
            && jobs.len() == 1
            && done.is_none()
            && waiting.load(Ordering::Acquire) == 0
        {
            turn = None;
            let job = jobs.pop().expect("one job");
            let (finished, finished_rx) = oneshot::channel();
            hand_to_writer(&backend, job, move || {
                let _ = finished.send(());
            });
            handed = Some(finished_rx);
            continue;
        }
        // MySQL: a lone commit waits for one more when one is likely near, as a batch of two
        // costs the database about what one does (`commit_linger`). Not SQLite: there a commit
        // is cheap next to the thread wake-ups around it, and sharing its WAL sync saved no CPU
        // in measurements (load-tests/RESULTS.md, session 26), only added latency.
        if !uses_turn {
            jobs.iter().for_each(|j| linger.arrived(j.sent));
            if jobs.len() == 1 && max > 1 && done.is_none() && wait.is_zero() {
                let linger_for = linger.wait();
                if !linger_for.is_zero() {
                    let deadline = tokio::time::Instant::from_std(jobs[0].sent + linger_for);
                    let next = tokio::time::timeout_at(deadline, queue.recv()).await;
                    linger.lingered(matches!(next, Ok(Some(_))));
                    if let Ok(Some(job)) = next {
                        took(1);
                        linger.arrived(job.sent);
                        jobs.push(job);
                    }
                }
            }
        }
        if !wait.is_zero() && jobs.len() < max {
            let deadline = tokio::time::Instant::now() + wait;
            while jobs.len() < max {
                match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(job)) => {
                        took(1);
                        jobs.push(job);
                    }
                    _ => break,
                }
            }
        }
        if turn
            .as_ref()
            .is_some_and(|(_, since)| since.elapsed() >= TURN_HOLD_MAX)
        {
            turn = None;
        }
        // A lone entry with nothing in flight (ordinary rates) runs without the turn: taking
        // and giving it back cost two trips to sqlx's connection thread per batch (its release
        // pings), and with nothing queued behind it SQLite's own lock keeps the writers apart
        // (the writer's busy handler retries every 100 µs). Issue 22.
        let busy = jobs.len() > 1 || done.is_some();
        if uses_turn && turn.is_none() && busy {
            // Taking the turn may wait for another write: answer the previous batch first.
            settle(done.take()).await;
            // Without it the batch still runs; SQLite's locking then keeps writers apart.
            turn = match dispatch_backend!(&backend, b => b.write_turn().await) {
                Ok(t) => Some((t, tokio::time::Instant::now())),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the write turn");
                    None
                }
            };
        }
        metrics::histogram!(crate::metrics::LEDGER_BATCH_SIZE).record(jobs.len() as f64);
        metrics::counter!(crate::metrics::LEDGER_COMMITS).increment(1);
        // The next batch goes to the database first; the previous one is synced and answered
        // (its events published, in commit order) while the database works on this one.
        let (committed, ()) = futures_util::join!(
            commit(&backend, std::mem::take(&mut jobs), &waiting),
            settle(done.take())
        );
        done = Some(committed);
    }
}

/// Commits one batch; returns each job with its outcome, unanswered.
async fn commit(backend: &Backend, jobs: Vec<Job>, waiting: &Arc<AtomicUsize>) -> Committed {
    let span = batch_span(&jobs);
    commit_batch(backend, jobs, waiting).instrument(span).await
}

/// The trace's span of one batch (disabled, so free, while traces are off): a child of its one
/// entry's span, or linked to each entry's when it serves several requests.
fn batch_span(jobs: &[Job]) -> tracing::Span {
    let span =
        tracing::info_span!(target: crate::otel::TARGET, "ledger.commit", batch_size = jobs.len());
    if span.is_disabled() {
        return span;
    }
    match jobs {
        [one] => one.trace.adopt(&span),
        many => many.iter().for_each(|j| j.trace.link_from(&span)),
    }
    span
}

async fn commit_batch(backend: &Backend, jobs: Vec<Job>, waiting: &Arc<AtomicUsize>) -> Committed {
    let entries: Vec<Arc<NewEntry>> = jobs.iter().map(|j| j.entry.clone()).collect();
    let key = jobs[0].audit_key.clone();
    match with_retries(backend, &entries, &key, waiting).await {
        Ok(batch) => Committed {
            jobs: jobs.into_iter().zip(batch.results).collect(),
            durable: batch.durable.into_iter().collect(),
        },
        Err(e) if jobs.len() == 1 => {
            let job = jobs.into_iter().next().expect("one job");
            Committed {
                jobs: vec![(job, Err(e))],
                durable: Vec::new(),
            }
        }
        // Something in the batch breaks the transaction as a whole (a key committed by another
        // node meanwhile, say): commit each entry alone so one cannot fail the others.
        Err(e) => {
            tracing::debug!(error = %e, size = jobs.len(), "batch failed; committing entries one by one");
            let mut out = Committed {
                jobs: Vec::with_capacity(jobs.len()),
                durable: Vec::new(),
            };
            for job in jobs {
                let result = with_retries(
                    backend,
                    std::slice::from_ref(&job.entry),
                    &job.audit_key,
                    waiting,
                )
                .await;
                let result = match result {
                    Ok(mut batch) => {
                        out.durable.extend(batch.durable);
                        batch.results.pop().expect("one result")
                    }
                    Err(e) => Err(e),
                };
                out.jobs.push((job, result));
            }
            out
        }
    }
}

async fn with_retries(
    backend: &Backend,
    entries: &[Arc<NewEntry>],
    audit_key: &Arc<[u8; 32]>,
    waiting: &Arc<AtomicUsize>,
) -> StoreResult<CommittedBatch> {
    let mut attempt = 0;
    loop {
        match dispatch_backend!(backend, b => b.post_batch(entries, audit_key, waiting).await) {
            Err(e) if attempt < TRANSIENT_RETRIES && backend.is_transient(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(1 << attempt)).await;
            }
            other => return other,
        }
    }
}
