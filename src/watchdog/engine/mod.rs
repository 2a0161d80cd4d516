//! The rule loop: every `watchdog.interval`, read each rule's subjects,
//! step their alerts, and write the transitions with the messages and
//! actions they call for in one transaction. Memory follows the database:
//! a tick whose write fails changes nothing and is tried again next tick,
//! except when the file itself is at fault (full, read-only): then the
//! changes are held in memory, bounded, and written once it recovers.

mod changes;
mod held;
mod limits;

use super::{
    probes::ProbeBook,
    rules::{self, ProcRef, Readers, Reading, Rule, SharedReaders},
    state::{Open, Phase, Step, step},
    view::SubjectView,
};
use crate::{
    config::watchdog::SubjectKind,
    services::Services,
    store::{AlertRef, BudgetRow, StateChange, Store},
    ticker::Ticker,
};
use chrono::{DateTime, Utc};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// One subject of one rule.
#[derive(Debug, Clone)]
pub struct Subject {
    pub label: String,
    pub value: Option<f64>,
    pub process: Option<ProcRef>,
    pub open: Option<Open>,
    /// When its last alert resolved, for the flap guard.
    pub resolved_at: Option<DateTime<Utc>>,
}

type Key = (usize, String);

pub struct Engine {
    pub rules: Arc<Vec<Rule>>,
    /// Open alerts and the latest reading of every subject.
    pub table: Mutex<HashMap<Key, Subject>>,
    readers: SharedReaders,
    store: Arc<Store>,
    services: Arc<Services>,
    probes: Arc<ProbeBook>,
    pub host: String,
    pub link_base: String,
    pub outbox: Arc<Notify>,
    pub actions: Arc<Notify>,
    interval: Duration,
    flap_guard: Duration,
    budgets: Mutex<Vec<limits::Budget>>,
    /// The latest state of each service a rule watches.
    services_up: Arc<Mutex<HashMap<String, Option<f64>>>>,
    silences: Mutex<Silences>,
    silences_dirty: Arc<std::sync::atomic::AtomicBool>,
    /// Whether a tick's readings go to a blocking thread (`Readers::may_block`).
    may_block: bool,
    held: Arc<Mutex<held::Held>>,
    /// How far the wall clock had stepped when the times in memory were
    /// last moved with it (see `crate::clock`).
    stepped: Mutex<chrono::Duration>,
}

/// Silences cached between ticks, each with its end: which are in force is
/// worked out at each tick, and the table is read again only when a change
/// through the API sets `silences_dirty` (it counts from the next readings
/// on), and once per [`SILENCE_REFRESH`] in case another program wrote it.
#[derive(Default)]
struct Silences {
    list: Vec<(String, Option<String>, DateTime<Utc>)>,
    read_at: Option<std::time::Instant>,
}

impl Silences {
    fn active(&self, now: DateTime<Utc>) -> Vec<(String, Option<String>)> {
        self.list
            .iter()
            .filter(|(.., until)| *until > now)
            .map(|(rule, subject, _)| (rule.clone(), subject.clone()))
            .collect()
    }
}

const SILENCE_REFRESH: Duration = Duration::from_secs(60);

pub struct EngineParts {
    pub rules: Vec<crate::config::watchdog::RuleSettings>,
    pub interval: Duration,
    pub repeat: Duration,
    pub host: String,
    pub link_base: String,
    pub flap_guard: Duration,
}

impl Engine {
    pub fn new(
        parts: EngineParts,
        store: Arc<Store>,
        services: Arc<Services>,
        probes: Arc<ProbeBook>,
    ) -> Result<Self, crate::collect::CollectError> {
        let (rules, procs) = rules::compile(&parts.rules, parts.repeat)?;
        let needs_host = rules::needs_host(&rules);
        let readers = Readers {
            procs,
            host: crate::collect::watch::HostWatch::new()?,
            needs_host,
        };
        Ok(Self {
            may_block: readers.may_block(&rules),
            readers: Arc::new(Mutex::new(readers)),
            rules: Arc::new(rules),
            table: Mutex::new(HashMap::new()),
            store,
            services,
            probes,
            host: parts.host,
            link_base: parts.link_base,
            outbox: Arc::new(Notify::new()),
            actions: Arc::new(Notify::new()),
            interval: parts.interval,
            flap_guard: parts.flap_guard,
            budgets: Mutex::new(vec![limits::Budget::default(); parts.rules.len()]),
            services_up: Arc::new(Mutex::new(HashMap::new())),
            silences: Mutex::new(Silences::default()),
            silences_dirty: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            held: Arc::default(),
            stepped: Mutex::new(chrono::Duration::zero()),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Subject>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes up what the agent left when it stopped: open alerts stay
    /// pending or firing with their `for` and `keep_firing_for` clocks and
    /// are not notified again as new; the rules' budgets and the flap guard
    /// go on from where they were. Alerts of rules no longer configured are
    /// resolved.
    pub fn resume(&self) -> Result<usize, crate::store::StoreError> {
        let open = self.store.open_alerts()?;
        let clock = crate::clock::now();
        *lock(&self.stepped) = clock.stepped;
        let now = clock.wall;
        {
            let mut budgets = lock(&self.budgets);
            for row in self.store.watchdog_budgets()? {
                if let Some(idx) = self.rules.iter().position(|r| r.name() == row.rule)
                    && let Some(b) = budgets.get_mut(idx)
                {
                    *b = limits::Budget::restored(row.tokens, row.at);
                }
            }
        }
        let flap_since = now - chrono::Duration::from_std(self.flap_guard).unwrap_or_default();
        let resolved = self.store.resolved_since(flap_since)?;
        let mut orphans = Vec::new();
        let mut table = self.table();
        for a in &open {
            let Some(idx) = self.rules.iter().position(|r| r.name() == a.rule) else {
                orphans.push(StateChange {
                    alert: AlertRef::Existing(a.id),
                    from: if a.state == "firing" {
                        "firing"
                    } else {
                        "pending"
                    },
                    to: if a.state == "firing" {
                        "resolved"
                    } else {
                        "inactive"
                    },
                    at: now,
                    value: None,
                    within_since: None,
                    notifications: Vec::new(),
                    actions: Vec::new(),
                });
                continue;
            };
            let process = parse_process_key(&a.subject_key, &a.subject);
            table.insert(
                (idx, a.subject_key.clone()),
                Subject {
                    label: a.subject.clone(),
                    value: a.value,
                    process,
                    resolved_at: None,
                    open: Some(Open {
                        alert_id: a.id,
                        phase: if a.state == "firing" {
                            Phase::Firing
                        } else {
                            Phase::Pending
                        },
                        started_at: a.started_at,
                        fired_at: a.fired_at,
                        within_since: a.within_since,
                        notified_at: a.notified_at.or(a.fired_at),
                    }),
                },
            );
        }
        for r in resolved {
            let Some(idx) = self.rules.iter().position(|x| x.name() == r.rule) else {
                continue;
            };
            let subject = table
                .entry((idx, r.subject_key.clone()))
                .or_insert_with(|| Subject {
                    process: parse_process_key(&r.subject_key, &r.subject),
                    label: r.subject,
                    value: None,
                    open: None,
                    resolved_at: None,
                });
            subject.resolved_at = Some(r.at);
        }
        drop(table);
        if !orphans.is_empty() {
            self.store.apply_transitions(&orphans, &[])?;
        }
        Ok(open.len() - orphans.len())
    }

    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        for name in rules::watched_services(&self.rules) {
            let (services, up, stop) = (
                Arc::clone(&self.services),
                Arc::clone(&self.services_up),
                shutdown.clone(),
            );
            // States are cached a second: asking more often adds nothing.
            let every = self.interval.max(Duration::from_secs(1));
            tokio::spawn(async move {
                let mut ticker = Ticker::every(every);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = ticker.tick() => {}
                    }
                    let v = tokio::select! {
                        _ = stop.cancelled() => return,
                        v = rules::service_up(&services, &name) => v,
                    };
                    lock(&up).insert(name.clone(), v);
                }
            });
        }
        let mut ticker = Ticker::every(self.interval);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return self.last_flush().await,
                _ = ticker.tick() => {}
            }
            match self.tick().await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("the watchdog writes its alerts again");
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(error = %e, "the watchdog cannot write its alerts; it keeps trying every tick");
                }
                Err(_) => {}
            }
        }
    }

    /// Moves the times kept in memory with the steps the wall clock made
    /// since they were taken: `for`, `keep_firing_for`, `repeat`, the flap
    /// guard and the budgets measure what the monotonic clock measured.
    fn follow_clock(&self, stepped: chrono::Duration) {
        let step = {
            let mut seen = lock(&self.stepped);
            std::mem::replace(&mut *seen, stepped)
        };
        let step = stepped - step;
        if step.is_zero() {
            return;
        }
        for subject in self.table().values_mut() {
            if let Some(o) = subject.open.as_mut() {
                o.follow_step(step);
            }
            subject.resolved_at = subject.resolved_at.map(|t| t + step);
        }
        for b in lock(&self.budgets).iter_mut() {
            b.follow_step(step);
        }
    }

    async fn tick(&self) -> Result<(), String> {
        let silences = &self.silences;
        let readers = Arc::clone(&self.readers);
        let store = Arc::clone(&self.store);
        let rules = Arc::clone(&self.rules);
        let dirty = Arc::clone(&self.silences_dirty);
        let due = lock(silences)
            .read_at
            .is_none_or(|t| t.elapsed() >= SILENCE_REFRESH);
        // Processes and statvfs may block, and go to a blocking thread; the
        // host alone is three reads of /proc files kept open, taken here.
        let mut readings = if self.may_block {
            tokio::task::spawn_blocking(move || {
                rules::blocking_readings(&rules, &mut lock(&readers))
            })
            .await
            .map_err(|e| format!("the watchdog's reading task failed: {e}"))?
        } else {
            rules::blocking_readings(&rules, &mut lock(&readers))
        };
        // Checked after the readings: a silence made while they were taken
        // covers what they saw.
        let silence_list = if dirty.swap(false, std::sync::atomic::Ordering::SeqCst) || due {
            let list = tokio::task::spawn_blocking(move || store.active_silences(Utc::now()))
                .await
                .map_err(|e| format!("the watchdog's reading task failed: {e}"))?;
            Some(list.map(|l| {
                l.into_iter()
                    .map(|s| (s.rule, s.subject, s.until))
                    .collect::<Vec<_>>()
            }))
        } else {
            None
        };
        debug_assert_eq!(readings.len(), self.rules.len());
        if let Some(list) = silence_list {
            let list = list.map_err(|e| {
                // Read again at the next tick, not only once the minute is up.
                dirty.store(true, std::sync::atomic::Ordering::SeqCst);
                e.to_string()
            })?;
            let mut s = lock(silences);
            s.list = list;
            s.read_at = Some(std::time::Instant::now());
        }
        let services_up = lock(&self.services_up).clone();
        rules::async_readings(&self.rules, &services_up, &self.probes, &mut readings);
        let clock = crate::clock::now();
        self.follow_clock(clock.stepped);
        let now = clock.wall;
        let silenced = lock(silences).active(now);
        let (plan, budgets) = self.plan(&readings, now);
        let batch: Vec<(usize, StateChange)> = plan
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.transition(p, now, &silenced).map(|t| (i, t)))
            .collect();
        if batch.is_empty() && lock(&self.held).is_empty() {
            // Only refills and held-back counts changed: nothing to store.
            *lock(&self.budgets) = budgets;
            return Ok(());
        }
        let wakes = (
            batch.iter().any(|(_, t)| !t.notifications.is_empty()),
            batch
                .iter()
                .any(|(_, t)| t.actions.iter().any(|a| a.status == "pending")),
        );
        let rows = if batch.is_empty() {
            Vec::new()
        } else {
            self.budget_rows(&budgets)
        };
        let changes = batch.iter().map(|(_, t)| t.clone()).collect();
        let stored = self.store_changes(changes, rows).await?;
        self.renumber(&stored.renumbered);
        if stored.flushed {
            self.outbox.notify_one();
            self.actions.notify_one();
        }
        let ids = stored.ids.map_err(|e| e.to_string())?;
        let mut per_plan = vec![None; plan.len()];
        for ((i, _), id) in batch.iter().zip(ids) {
            per_plan[*i] = id;
        }
        self.commit(&plan, &per_plan, now);
        *lock(&self.budgets) = budgets;
        if !stored.held {
            if wakes.0 {
                self.outbox.notify_one();
            }
            if wakes.1 {
                self.actions.notify_one();
            }
        }
        Ok(())
    }

    /// The budgets of the rules that have used theirs, to store.
    fn budget_rows(&self, budgets: &[limits::Budget]) -> Vec<BudgetRow> {
        self.rules
            .iter()
            .zip(budgets)
            .filter_map(|(r, b)| {
                let (tokens, at) = b.saved()?;
                Some(BudgetRow {
                    rule: r.name().to_owned(),
                    tokens,
                    at,
                })
            })
            .collect()
    }

    /// Writes what is held first, then this tick's changes; holds them
    /// instead while the file is at fault and there is room.
    async fn store_changes(
        &self,
        changes: Vec<StateChange>,
        budgets: Vec<BudgetRow>,
    ) -> Result<Stored, String> {
        let store = Arc::clone(&self.store);
        let held = Arc::clone(&self.held);
        tokio::task::spawn_blocking(move || {
            let mut held = lock(&held);
            let mut out = Stored::default();
            if !held.is_empty() {
                let n = held.len();
                let (made, err) = held.flush(&store);
                out.renumbered = made;
                if err.is_none() {
                    out.flushed = true;
                    tracing::info!(changes = n, "the watchdog wrote the alert changes it held while the database could not take them");
                }
            }
            if changes.is_empty() {
                out.ids = Ok(Vec::new());
                return out;
            }
            let n = changes.len();
            if held.is_empty() {
                match store.apply_transitions(&changes, &budgets) {
                    Ok(ids) => out.ids = Ok(ids),
                    Err(e) if e.is_fault() && held.has_room(n) => {
                        tracing::warn!(error = %e, "the watchdog holds its alert changes in memory (at most {}) until the database takes them", held::MAX_HELD);
                        out.ids = Ok(held.hold(changes, budgets));
                        out.held = true;
                    }
                    Err(e) => out.ids = Err(e.to_string()),
                }
            } else if held.has_room(n) {
                out.ids = Ok(held.hold(changes, budgets));
                out.held = true;
            } else {
                out.ids = Err(format!(
                    "{} alert changes are held in memory, the most it keeps; newer ones wait",
                    held.len()
                ));
            }
            out
        })
        .await
        .map_err(|e| format!("the watchdog's writing task failed: {e}"))
    }

    /// Held alerts that got their ids once written.
    fn renumber(&self, made: &[(i64, i64)]) {
        if made.is_empty() {
            return;
        }
        let ids: HashMap<i64, i64> = made.iter().copied().collect();
        for s in self.table().values_mut() {
            if let Some(o) = s.open.as_mut()
                && let Some(real) = ids.get(&o.alert_id)
            {
                o.alert_id = *real;
            }
        }
    }

    /// At shutdown: one more try for what is held, or say it is lost.
    async fn last_flush(&self) {
        let (store, held) = (Arc::clone(&self.store), Arc::clone(&self.held));
        let _ = tokio::task::spawn_blocking(move || {
            let mut held = lock(&held);
            if held.is_empty() {
                return;
            }
            let n = held.len();
            if let (_, Some(e)) = held.flush(&store) {
                tracing::error!(error = %e, changes = held.len(), of = n, "the watchdog stops with alert changes the database never took; they are lost");
            }
        })
        .await;
    }

    /// What each subject's step is this tick, and the budgets as they
    /// would be once it is written; also records the readings.
    fn plan(
        &self,
        readings: &[Vec<Reading>],
        now: DateTime<Utc>,
    ) -> (Vec<Planned>, Vec<limits::Budget>) {
        let mut table = self.table();
        let mut budgets = lock(&self.budgets).clone();
        let mut plan = Vec::new();
        for (idx, (rule, list)) in self.rules.iter().zip(readings).enumerate() {
            let mut seen = HashSet::new();
            let mut open = table
                .iter()
                .filter(|((i, _), s)| *i == idx && s.open.is_some())
                .count();
            for r in list {
                seen.insert(r.key.clone());
                let key = (idx, r.key.clone());
                let subject = table.entry(key.clone()).or_insert_with(|| Subject {
                    label: r.label.clone(),
                    value: None,
                    process: r.process.clone(),
                    open: None,
                    resolved_at: None,
                });
                subject.value = r.value;
                let Some(v) = r.value else { continue };
                let mut timing = rule.timing;
                let flapping = subject
                    .resolved_at
                    .is_some_and(|t| (now - t).to_std().unwrap_or_default() < self.flap_guard);
                let not_firing = subject
                    .open
                    .as_ref()
                    .is_none_or(|o| o.phase == Phase::Pending);
                if not_firing && flapping {
                    timing.for_ = timing.for_.max(self.flap_guard);
                }
                let s = step(subject.open.as_ref(), Some(rule.beyond(v)), now, timing);
                if matches!(s, Step::Open(_)) {
                    let Some(budget) = budgets.get_mut(idx) else {
                        continue;
                    };
                    if !budget.take(open, now) {
                        continue;
                    }
                    open += 1;
                }
                if s != Step::Stay {
                    plan.push(Planned {
                        key,
                        step: s,
                        gone: false,
                    });
                }
            }
            if let Some(n) = budgets.get_mut(idx).and_then(|b| b.warning(now)) {
                tracing::warn!(
                    rule = rule.name(),
                    held_back = n,
                    "subjects beyond the limit were not given alerts: the rule has too many open, or opened too many lately"
                );
            }
            // A process that is gone resolves its alert; other subjects
            // keep their state while they cannot be read.
            if rule.kind() == SubjectKind::Process {
                let gone: Vec<Key> = table
                    .keys()
                    .filter(|(i, k)| *i == idx && !seen.contains(k))
                    .cloned()
                    .collect();
                for key in gone {
                    let open = table.get(&key).and_then(|s| s.open.clone());
                    match step(open.as_ref(), None, now, rule.timing) {
                        Step::Stay => {
                            table.remove(&key);
                        }
                        s => plan.push(Planned {
                            key,
                            step: s,
                            gone: true,
                        }),
                    }
                }
            }
        }
        (plan, budgets)
    }

    /// Memory follows what was written: `ids` holds each planned step's
    /// alert id as stored (or held).
    fn commit(&self, plan: &[Planned], ids: &[Option<i64>], now: DateTime<Utc>) {
        let mut table = self.table();
        for (p, id) in plan.iter().zip(ids) {
            let id = *id;
            let Some(subject) = table.get_mut(&p.key) else {
                continue;
            };
            match p.step {
                Step::Open(phase) => {
                    subject.open = id.map(|alert_id| Open {
                        alert_id,
                        phase,
                        started_at: now,
                        fired_at: (phase == Phase::Firing).then_some(now),
                        within_since: None,
                        notified_at: (phase == Phase::Firing).then_some(now),
                    });
                }
                Step::Fire => {
                    if let Some(o) = subject.open.as_mut() {
                        o.phase = Phase::Firing;
                        o.fired_at = Some(now);
                        o.notified_at = Some(now);
                    }
                }
                Step::Remind => {
                    if let Some(o) = subject.open.as_mut() {
                        o.notified_at = Some(now);
                    }
                }
                Step::WithinSince => {
                    if let Some(o) = subject.open.as_mut() {
                        o.within_since = Some(now);
                    }
                }
                Step::BeyondAgain => {
                    if let Some(o) = subject.open.as_mut() {
                        o.within_since = None;
                    }
                }
                Step::Drop | Step::Resolve => {
                    subject.open = None;
                    if p.step == Step::Resolve {
                        subject.resolved_at = Some(now);
                    }
                    if p.gone {
                        table.remove(&p.key);
                    }
                }
                Step::Stay => {}
            }
        }
    }

    /// Silences were made or removed: read them again at the next tick.
    pub fn silences_changed(&self) {
        self.silences_dirty
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Each rule's subjects now, for the API.
    pub fn subjects(&self, rule: usize) -> Vec<SubjectView> {
        let table = self.table();
        let mut out: Vec<SubjectView> = table
            .iter()
            .filter(|((i, _), _)| *i == rule)
            .map(|(_, s)| SubjectView {
                subject: s.label.clone(),
                state: s
                    .open
                    .as_ref()
                    .map_or("inactive", |o| o.phase.as_str())
                    .to_owned(),
                value: s.value,
                since: s.open.as_ref().map(|o| o.started_at),
                alert_id: s.open.as_ref().map(|o| o.alert_id),
            })
            .collect();
        out.sort_by(|a, b| a.subject.cmp(&b.subject));
        out
    }
}

/// What `store_changes` did.
struct Stored {
    /// Each change's alert id, written or held.
    ids: Result<Vec<Option<i64>>, String>,
    /// Provisional ids of held alerts written now, with their ids.
    renumbered: Vec<(i64, i64)>,
    /// Everything held before this tick is written.
    flushed: bool,
    /// This tick's changes are held, not written.
    held: bool,
}

impl Default for Stored {
    fn default() -> Self {
        Self {
            ids: Ok(Vec::new()),
            renumbered: Vec::new(),
            flushed: false,
            held: false,
        }
    }
}

/// One subject's step this tick.
#[derive(Debug, Clone)]
struct Planned {
    key: Key,
    step: Step,
    gone: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `pid:4242:98765` with the label `worker (pid 4242)` back into a process.
fn parse_process_key(key: &str, label: &str) -> Option<ProcRef> {
    let mut parts = key.strip_prefix("pid:")?.split(':');
    let pid = parts.next()?.parse().ok()?;
    let start_ticks = parts.next()?.parse().ok()?;
    let name = label
        .rsplit_once(" (pid ")
        .map_or(label, |(n, _)| n)
        .to_owned();
    Some(ProcRef {
        pid,
        start_ticks,
        name,
    })
}
