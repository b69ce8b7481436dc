//! Sweeps: many scenarios from one base, varied along grid axes or sampled ranges, each row
//! reduced to metrics. Rows are a pure function of the sweep and the row index, so any subset
//! (a shard, a resumed tail) can be computed alone and the output is the same whatever the
//! number of threads.
//!
//! ```
//! use selfheal::model::{Model, P2p};
//! use selfheal::scenario::Scenario;
//! use selfheal::sweep::{Axis, Design, Metric, Sweep};
//! let base = Scenario::new(&P2p);
//! let design = Design::Grid(vec![Axis::parse("shock=0.2:0.6:3", &base).unwrap()]);
//! let metrics = Metric::parse_list("outcome,min_peers", &P2p.states()).unwrap();
//! let sweep = Sweep::new(&P2p, base, design, metrics).unwrap();
//! let mut rows = vec![];
//! sweep.run(0..sweep.len(), 1, |_, row| { rows.push(row.to_vec()); Ok(()) }).unwrap();
//! assert_eq!(sweep.header(), ["shock", "outcome", "min_peers", "status"]);
//! assert_eq!(rows[0][1], "recovered"); // 0.2 is absorbed
//! assert_eq!(rows[2][1], "collapsed"); // 0.6 tips the network
//! ```

pub(crate) mod design;
mod output;

pub use crate::qmc::SOBOL_DIMS;
pub use design::{Axis, Design, Quantity, Range, Sampler};
pub use output::{merge, run_to_file, Fingerprint, RunFile, Shard};

use crate::analysis::tipping::{critical_shock, critical_window, Landscape, TippingOptions};
use crate::equilibria::{healthy_count, healthy_from, RestState};
use crate::error::{suggest, Error};
use crate::model::{Model, StateSpec};
use crate::output::num;
use crate::scenario::Scenario;
use crate::simulate::{simulate_with, SimOptions};
use nalgebra::{Const, DimMin};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};

/// A quantity computed for each row. Metrics of a state are named after it: `min_peers`,
/// `t_min_peers` and `peak_queue` for the reference model, `min_<state>` for a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// recovered / collapsed / undecided.
    Outcome,
    /// Lowest value of state `i` over the run (`min_<state>`).
    Min(usize),
    /// When state `i` was lowest (`t_min_<state>`, in the model's time unit).
    TMin(usize),
    /// Highest value of state `i` over the run (`peak_<state>`).
    Peak(usize),
    /// Lowest service level over the run (models that define one).
    MinServiceLevel,
    /// Recovery time (empty when the watched state never returns).
    RecoveryTime,
    /// Highest utilisation over the run (models that define one).
    PeakUtilisation,
    /// The critical shock of the row's parameters (empty when none below 1).
    CriticalShock,
    /// The critical window for the row's shock fraction (empty when none).
    CriticalWindow,
    /// Number of equilibria of the row's parameters.
    NEquilibria,
}

impl Metric {
    /// Every metric of a model with these states, in documentation order (the state metrics
    /// in state order).
    pub fn all(states: &[StateSpec]) -> Vec<Metric> {
        let n = states.len();
        let mut out = vec![Metric::Outcome];
        out.extend((0..n).map(Metric::Min));
        out.extend((0..n).map(Metric::TMin));
        out.push(Metric::RecoveryTime);
        out.extend((0..n).map(Metric::Peak));
        out.extend([
            Metric::MinServiceLevel,
            Metric::PeakUtilisation,
            Metric::CriticalShock,
            Metric::CriticalWindow,
            Metric::NEquilibria,
        ]);
        out
    }

    /// The column name, for a model with these states.
    pub fn name(self, states: &[StateSpec]) -> String {
        let state = |i: usize| states.get(i).map_or("?", |s| s.name.as_ref());
        match self {
            Metric::Outcome => "outcome".into(),
            Metric::Min(i) => format!("min_{}", state(i)),
            Metric::TMin(i) => format!("t_min_{}", state(i)),
            Metric::Peak(i) => format!("peak_{}", state(i)),
            Metric::MinServiceLevel => "min_service_level".into(),
            Metric::RecoveryTime => "recovery_time".into(),
            Metric::PeakUtilisation => "peak_utilisation".into(),
            Metric::CriticalShock => "critical_shock".into(),
            Metric::CriticalWindow => "critical_window".into(),
            Metric::NEquilibria => "n_equilibria".into(),
        }
    }

    /// Why `model` (at parameters `p`) cannot give this metric, or `None` if it can: a state
    /// it does not have, no service level, no utilisation, no reboot wave.
    pub fn missing_in<M: Model<N>, const N: usize>(
        self,
        model: &M,
        p: &[f64],
    ) -> Option<&'static str> {
        let x = model.nominal_state(p);
        match self {
            Metric::Min(i) | Metric::TMin(i) | Metric::Peak(i) if i >= N => Some("no such state"),
            Metric::MinServiceLevel if model.service_level(&x, p).is_none() => {
                Some("it defines no service level")
            }
            Metric::PeakUtilisation if model.utilisation(&x, p).is_none() => {
                Some("it defines no utilisation")
            }
            Metric::CriticalShock | Metric::CriticalWindow
                if model.reboot_jump(&x, p, 0.0, 0.0).is_err() =>
            {
                Some("it defines no reboot wave")
            }
            _ => None,
        }
    }

    /// Parses a comma-separated list of the metrics that `model` gives at parameters `p`
    /// ([`Metric::missing_in`]): an unknown name or one the model cannot give is refused with
    /// the list of those it can.
    pub fn parse_for<M: Model<N>, const N: usize>(
        text: &str,
        model: &M,
        p: &[f64],
    ) -> Result<Vec<Metric>, Error> {
        let states = model.states();
        let can: Vec<String> = Metric::all(&states)
            .into_iter()
            .filter(|m| m.missing_in(model, p).is_none())
            .map(|m| m.name(&states))
            .collect();
        let list = Metric::parse_list(text, &states).map_err(|e| match e {
            Error::Invalid(m) if m.starts_with("unknown metric") => Error::Invalid(format!(
                "{}; model `{}` gives {}",
                m.split(';').next().unwrap_or(&m),
                model.name(),
                can.join(", ")
            )),
            e => e,
        })?;
        for m in &list {
            if let Some(why) = m.missing_in(model, p) {
                return Err(Error::Invalid(format!(
                    "metric `{}` is not defined for model `{}` ({why}); it gives {}",
                    m.name(&states),
                    model.name(),
                    can.join(", ")
                )));
            }
        }
        Ok(list)
    }

    /// Parses a comma-separated list of the metrics of a model with these states.
    ///
    /// ```
    /// use selfheal::model::{Model, P2p};
    /// use selfheal::sweep::Metric;
    /// let m = Metric::parse_list("outcome, min_peers, peak_queue", &P2p.states()).unwrap();
    /// assert_eq!(m, [Metric::Outcome, Metric::Min(0), Metric::Peak(2)]);
    /// ```
    pub fn parse_list(text: &str, states: &[StateSpec]) -> Result<Vec<Metric>, Error> {
        let all = Metric::all(states);
        let names: Vec<String> = all.iter().map(|m| m.name(states)).collect();
        let mut out = vec![];
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let m = names
                .iter()
                .position(|n| n == name)
                .map(|k| all[k])
                .ok_or_else(|| match suggest(name, names.iter().map(String::as_str)) {
                    Some(hint) => Error::UnknownKey {
                        key: name.into(),
                        table: "the metrics".into(),
                        hint: Some(hint),
                    },
                    // Nothing close (a state of another model): say what there is.
                    None => Error::Invalid(format!(
                        "unknown metric `{name}`; this model's metrics are {}",
                        names.join(", ")
                    )),
                })?;
            if out.contains(&m) {
                return Err(Error::Invalid(format!("metric `{name}` is listed twice")));
            }
            out.push(m);
        }
        if out.is_empty() {
            return Err(Error::Invalid("a sweep needs at least one metric".into()));
        }
        Ok(out)
    }

    fn needs_simulation(self) -> bool {
        !matches!(
            self,
            Metric::CriticalShock | Metric::CriticalWindow | Metric::NEquilibria
        )
    }
}

/// A sweep: the base scenario, what varies, what is measured, and how rows are solved.
pub struct Sweep<'m, M, const N: usize> {
    model: &'m M,
    base: Scenario,
    design: Design,
    metrics: Vec<Metric>,
    /// Simulation options of every row.
    pub sim: SimOptions,
    /// Options of the tipping metrics.
    pub tipping: TippingOptions,
}

/// Per-worker memo of what depends on the parameters alone.
#[derive(Default)]
pub struct RowCache<const N: usize> {
    landscapes: HashMap<Vec<u64>, Result<Arc<Landscape<N>>, String>>,
    critical: HashMap<Vec<u64>, CriticalEntry>,
    warm: WarmCount,
}

/// How often a row's healthy state came from a warm start ([`WARM_BLOCK`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WarmCount {
    /// Healthy states found by Newton from the anchor row's and accepted.
    pub accepted: usize,
    /// Warm starts declined (Newton failed, or reached a point that is not a stable healthy
    /// equilibrium, or the anchor had no unique healthy state): the full search ran instead.
    pub declined: usize,
}

/// Rows of a sweep come in blocks of this many by row index; the first row of each block is
/// its anchor. A row whose parameters differ from its anchor's finds its healthy state by
/// Newton from the anchor's (found by the full search), accepted only when Newton converges
/// to a root that is stable and healthy and the anchor's healthy state was the only stable
/// healthy equilibrium the full search found there; otherwise the row runs the full search.
/// The anchor is a function of the row index alone, so a row's numbers do not depend on the
/// order rows are computed in, the thread count or the shard.
pub const WARM_BLOCK: usize = 32;

/// Newton iterations a warm start may take before the full search runs instead.
pub const WARM_MAX_ITER: usize = 12;

/// A cached critical shock: the value and whether the network is down, or the error.
type CriticalEntry = Result<(Option<f64>, bool), String>;

/// Entries kept per cache before it is cleared (memory stays flat on huge sweeps).
const CACHE_LIMIT: usize = 4096;

fn key(p: &[f64]) -> Vec<u64> {
    p.iter().map(|v| v.to_bits()).collect()
}

impl<const N: usize> RowCache<N> {
    fn landscape<M: Model<N>>(&mut self, model: &M, p: &[f64]) -> Result<Arc<Landscape<N>>, Error>
    where
        Const<N>: DimMin<Const<N>, Output = Const<N>>,
    {
        if self.landscapes.len() > CACHE_LIMIT {
            self.landscapes.clear();
        }
        self.landscapes
            .entry(key(p))
            .or_insert_with(|| {
                Landscape::new(model, p)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(Error::Invalid)
    }

    /// The state the network rests in at `p`, by Newton from the healthy state at `anchor`
    /// when that gives a stable healthy equilibrium ([`WARM_BLOCK`]), else by the full search.
    fn rest_from<M: Model<N>>(
        &mut self,
        model: &M,
        anchor: &[f64],
        p: &[f64],
    ) -> Result<RestState<N>, Error>
    where
        Const<N>: DimMin<Const<N>, Output = Const<N>>,
    {
        if let Some(rest) = self.warm_rest(model, anchor, p) {
            self.warm.accepted += 1;
            return Ok(rest);
        }
        self.warm.declined += 1;
        Ok(self.landscape(model, p)?.rest_point())
    }

    fn warm_rest<M: Model<N>>(
        &mut self,
        model: &M,
        anchor: &[f64],
        p: &[f64],
    ) -> Option<RestState<N>>
    where
        Const<N>: DimMin<Const<N>, Output = Const<N>>,
    {
        let from = self.landscape(model, anchor).ok()?;
        if !from.rest.healthy || healthy_count(model, anchor, &from.equilibria) != 1 {
            return None;
        }
        let (e, service) = healthy_from(model, p, &from.rest_state(), WARM_MAX_ITER)?;
        Some(RestState {
            x: e.x,
            service,
            healthy: true,
        })
    }

    /// How many warm starts this cache's rows accepted and declined.
    pub fn warm_starts(&self) -> WarmCount {
        self.warm
    }
}

impl<'m, M: Model<N>, const N: usize> Sweep<'m, M, N>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    /// A sweep with default solver options.
    pub fn new(
        model: &'m M,
        base: Scenario,
        design: Design,
        metrics: Vec<Metric>,
    ) -> Result<Self, Error> {
        design.validate()?;
        if metrics.is_empty() {
            return Err(Error::Invalid("a sweep needs at least one metric".into()));
        }
        // Metrics the model cannot give are refused before any row is computed.
        let states = model.states();
        if !base.daily.is_empty() {
            if let Some(m) = metrics.iter().find(|m| !m.needs_simulation()) {
                return Err(Error::Unsupported(format!(
                    "metric `{}` reads equilibria, which a scenario with [daily] profiles does not have (its rest is a daily cycle): with [daily], sweep the simulation's metrics",
                    m.name(&states)
                )));
            }
        }
        let p = base.params.values();
        for m in &metrics {
            if let Some(why) = m.missing_in(model, p) {
                return Err(Error::Invalid(format!(
                    "metric `{}` is not defined for model `{}` ({why})",
                    m.name(&states),
                    model.name()
                )));
            }
        }
        Ok(Self {
            model,
            base,
            design,
            metrics,
            sim: SimOptions::default(),
            tipping: TippingOptions::default(),
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.design.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.design.is_empty()
    }

    /// The design.
    pub fn design(&self) -> &Design {
        &self.design
    }

    /// The metrics.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// The metrics' column names.
    pub fn metric_names(&self) -> Vec<String> {
        let states = self.model.states();
        self.metrics.iter().map(|m| m.name(&states)).collect()
    }

    /// The base scenario.
    pub fn base(&self) -> &Scenario {
        &self.base
    }

    /// Column names: one per axis, one per metric, then `status`: `ok`, `down` (the row's
    /// network has no healthy state at its initial or final parameters: outcomes are
    /// `collapsed` and `critical_shock` is empty), or the row's error.
    pub fn header(&self) -> Vec<String> {
        let mut h: Vec<String> = self.design.columns().into_iter().map(|(n, _)| n).collect();
        h.extend(self.metric_names());
        h.push("status".into());
        h
    }

    /// The scenario of row `i` (errors name the offending value).
    pub fn scenario(&self, i: usize) -> Result<Scenario, Error> {
        let mut sc = self.base.clone();
        let cols = self.design.columns();
        let point = self.design.point(i);
        // Supernode fractions after peer fractions: `shock` sets both, `sn_shock` then wins.
        for pass in [false, true] {
            for ((_, q), v) in cols.iter().zip(&point) {
                if (*q == Quantity::SnShock) == pass {
                    q.apply(&mut sc, *v)?;
                }
            }
        }
        sc.validate(self.model)?;
        Ok(sc)
    }

    /// Row `i` as CSV fields. A failing row carries its error in `status`, never aborts.
    pub fn row(&self, i: usize, cache: &mut RowCache<N>) -> Vec<String> {
        let point = self.design.point(i);
        let mut fields: Vec<String> = point.iter().map(|v| num(*v)).collect();
        match self.metrics_of(i, cache) {
            Ok((values, down)) => {
                fields.extend(values);
                fields.push(if down { "down" } else { "ok" }.into());
            }
            Err(e) => {
                fields.extend(self.metrics.iter().map(|_| String::new()));
                fields.push(e.to_string());
            }
        }
        fields
    }

    fn metrics_of(&self, i: usize, cache: &mut RowCache<N>) -> Result<(Vec<String>, bool), Error> {
        let sc = self.scenario(i)?;
        let p = sc.params.values().to_vec();
        let sim = if self.metrics.iter().any(|m| m.needs_simulation()) {
            // The anchor's parameters at the start and after the interventions ([`WARM_BLOCK`]).
            let anchor = self.scenario(i - i % WARM_BLOCK).ok().map(|a| {
                let start = a.params.values().to_vec();
                (start, a.final_params().values().to_vec())
            });
            let mut healthy = |q: &[f64]| -> Result<RestState<N>, Error> {
                let from = anchor
                    .as_ref()
                    .map(|(start, end)| if q == p.as_slice() { start } else { end });
                match from {
                    Some(a) if a.as_slice() != q => cache.rest_from(self.model, a, q),
                    _ => Ok(cache.landscape(self.model, q)?.rest_point()),
                }
            };
            Some(simulate_with(self.model, &sc, &self.sim, &mut healthy)?)
        } else {
            None
        };
        let opt = |v: Option<f64>| v.map_or(String::new(), num);
        let mut out = Vec::with_capacity(self.metrics.len());
        // A row whose network has no healthy state says so in its status.
        let mut down = sim
            .as_ref()
            .is_some_and(|s| s.summary.down || !s.summary.start_healthy);
        for m in &self.metrics {
            let s = sim.as_ref().map(|s| &s.summary);
            out.push(match m {
                Metric::Outcome => s.map_or(String::new(), |s| s.outcome.name().to_string()),
                Metric::Min(i) => opt(s.and_then(|s| s.minima.get(*i).map(|m| m.0))),
                Metric::TMin(i) => opt(s.and_then(|s| s.minima.get(*i).map(|m| m.1))),
                Metric::Peak(i) => opt(s.and_then(|s| s.peaks.get(*i).map(|m| m.0))),
                Metric::MinServiceLevel => opt(s.and_then(|s| s.min_service_level.map(|u| u.0))),
                Metric::RecoveryTime => opt(s.and_then(|s| s.recovery_time)),
                Metric::PeakUtilisation => opt(s.and_then(|s| s.peak_utilisation.map(|u| u.0))),
                Metric::CriticalShock => {
                    if cache.critical.len() > CACHE_LIMIT {
                        cache.critical.clear();
                    }
                    let v = cache
                        .critical
                        .entry(key(&p))
                        .or_insert_with(|| {
                            critical_shock(self.model, &p, &self.tipping)
                                .map(|c| (c.value, c.down))
                                .map_err(|e| e.to_string())
                        })
                        .clone()
                        .map_err(Error::Invalid)?;
                    down |= v.1;
                    opt(v.0)
                }
                Metric::CriticalWindow => {
                    let f = sc.shock.map(|s| s.fraction).ok_or_else(|| {
                        Error::Invalid(
                            "critical_window needs a shock (an axis or the scenario's)".into(),
                        )
                    })?;
                    opt(critical_window(self.model, &p, f, &self.tipping)?.value)
                }
                Metric::NEquilibria => {
                    format!("{}", cache.landscape(self.model, &p)?.equilibria.len())
                }
            });
        }
        Ok((out, down))
    }

    /// Computes rows `range` on `threads` threads (0: all cores) and hands them to `sink` in row
    /// order as they complete, so memory stays flat however many rows there are.
    ///
    /// Workers take small blocks of rows from a shared counter and never run more than a
    /// bounded number of blocks ahead of the last row handed on; `sink` runs on the calling
    /// thread while the workers go on. An error from `sink` stops the workers and is returned.
    pub fn run(
        &self,
        range: std::ops::Range<usize>,
        threads: usize,
        mut sink: impl FnMut(usize, &[String]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        check_threads(threads)?;
        if range.is_empty() {
            return Ok(());
        }
        // More threads than rows would only start idle threads.
        let threads = if threads == 0 {
            0
        } else {
            threads.min(range.len().max(1))
        };
        let pool = pool(threads)?;
        let workers = pool.current_num_threads().max(1);
        // Blocks small enough to balance the last rows across workers, large enough that the
        // counter and the channel cost nothing next to a row (tens of microseconds at least).
        let block = (range.len() / (workers * 64)).clamp(1, 16);
        let blocks = range.len().div_ceil(block);
        let ahead = 64 * workers;
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        // Blocks handed on so far, and a condition variable for workers that ran too far ahead.
        let emitted = (Mutex::new(0usize), Condvar::new());
        let (tx, rx) = mpsc::channel::<(usize, Vec<Vec<String>>)>();
        let mut result = Ok(());
        pool.in_place_scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, stop, emitted) = (&next, &stop, &emitted);
                let range = range.clone();
                scope.spawn(move |_| {
                    // Should a row panic, stop the others (which may be waiting for its block)
                    // so that the panic reaches the caller instead of a hang.
                    let _guard = StopOnPanic(stop, emitted);
                    let mut cache = RowCache::default();
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= blocks {
                            return;
                        }
                        {
                            let (lock, cv) = emitted;
                            let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
                            while b >= *done + ahead && !stop.load(Ordering::Relaxed) {
                                done = cv.wait(done).unwrap_or_else(|e| e.into_inner());
                            }
                        }
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let lo = range.start + b * block;
                        let hi = (lo + block).min(range.end);
                        let rows = (lo..hi).map(|i| self.row(i, &mut cache)).collect();
                        if tx.send((b, rows)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            // Hand blocks on in order; later blocks wait in `pending` (at most `ahead` of them).
            let mut pending: BTreeMap<usize, Vec<Vec<String>>> = BTreeMap::new();
            let mut want = 0usize;
            'hand: for (b, rows) in rx.iter() {
                pending.insert(b, rows);
                while let Some(rows) = pending.remove(&want) {
                    let lo = range.start + want * block;
                    for (k, row) in rows.iter().enumerate() {
                        if let Err(e) = sink(lo + k, row) {
                            result = Err(e);
                            halt(&stop, &emitted);
                            break 'hand;
                        }
                    }
                    want += 1;
                    let (lock, cv) = &emitted;
                    *lock.lock().unwrap_or_else(|e| e.into_inner()) = want;
                    cv.notify_all();
                }
            }
        });
        result
    }
}

/// Tells the workers to stop: sets the flag under the lock they wait on (so no waiting worker
/// misses it) and wakes them all.
fn halt(stop: &AtomicBool, emitted: &(Mutex<usize>, Condvar)) {
    let (lock, cv) = emitted;
    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
    stop.store(true, Ordering::Relaxed);
    cv.notify_all();
}

/// Halts the workers when dropped during a panic.
struct StopOnPanic<'a>(&'a AtomicBool, &'a (Mutex<usize>, Condvar));

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            halt(self.0, self.1);
        }
    }
}

/// Most worker threads a sweep may ask for.
pub const MAX_THREADS: usize = 1024;

/// Refuses a thread count above [`MAX_THREADS`].
pub(crate) fn check_threads(threads: usize) -> Result<(), Error> {
    if threads > MAX_THREADS {
        return Err(Error::OutOfRange {
            name: "threads".into(),
            value: threads as f64,
            range: format!("in [0, {MAX_THREADS}] (0: one per core)"),
        });
    }
    Ok(())
}

/// The thread pool for `threads` workers (0: one per core), built once per size and reused, so
/// that short sweeps run repeatedly (notebooks, benchmarks) do not pay for starting threads.
pub(crate) fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>, Error> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Invalid(format!("thread pool: {e}")))?;
    let p = Arc::new(p);
    pools.insert(threads, p.clone());
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ParamSpec, Scalar, StateSpec};
    use nalgebra::SVector;
    use std::borrow::Cow;

    /// Logistic growth that panics for rates just above 5 (a bug in a user's model).
    struct Faulty;
    static RATE: [ParamSpec; 1] = [ParamSpec {
        name: Cow::Borrowed("rate"),
        symbol: Cow::Borrowed("r"),
        unit: Cow::Borrowed("1/min"),
        default: 1.0,
        lower: crate::model::Bound::Closed(0.0),
        upper: crate::model::Bound::Unbounded,
        meaning: Cow::Borrowed("growth rate"),
    }];
    impl Model<1> for Faulty {
        fn name(&self) -> &str {
            "faulty"
        }
        fn states(&self) -> [StateSpec; 1] {
            [StateSpec {
                name: Cow::Borrowed("x"),
                meaning: Cow::Borrowed("share"),
            }]
        }
        fn params(&self) -> &[ParamSpec] {
            &RATE
        }
        fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 1>, p: &[T]) -> SVector<T, 1> {
            assert!(!(5.0..5.01).contains(&p[0].re()), "rate just above 5");
            SVector::from([p[0] * x[0] * (T::from(1.0) - x[0])])
        }
        fn nominal_state(&self, _p: &[f64]) -> SVector<f64, 1> {
            SVector::from([1.0])
        }
        fn service_level(&self, x: &SVector<f64, 1>, _p: &[f64]) -> Option<f64> {
            Some(x[0].clamp(0.0, 1.0))
        }
    }

    #[test]
    fn a_panicking_row_reaches_the_caller_instead_of_hanging_the_workers() {
        let base = Scenario::new(&Faulty);
        // A few rows in one block panic; the worker that runs ahead waits for that block's rows
        // and must be released.
        let axis = Axis::parse("rate=0.5:10:5000", &base).unwrap();
        let sweep = Sweep::new(
            &Faulty,
            base,
            Design::Grid(vec![axis]),
            vec![Metric::NEquilibria],
        )
        .unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sweep.run(0..sweep.len(), 2, |_, _| Ok(()))
            }));
            tx.send(r.is_err()).unwrap();
        });
        let panicked = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the sweep hung after a row panicked");
        assert!(panicked, "the row's panic must reach the caller");
    }
}
