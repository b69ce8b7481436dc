//! The reference model as a continuous-time Markov chain on integer counts of `M` users:
//! exact simulation (Gillespie's direct method) for small `M`, tau-leaping for large `M`.
//!
//! The rate law is the fluid model's, [`P2p::flows`], and the jumps are its stoichiometry,
//! [`P2P_FLOWS`]: each of the first nine flows becomes a transition moving one user, at `M`
//! times the fluid flow evaluated at the current fractions ([`transition_rates`]): sign-on
//! (offline → queue), sign-off (peer → offline), supernode sign-off (supernode → offline), login
//! (queue → peer), give-up (queue → offline), promotion (peer → supernode), overload shutdown
//! (supernode → queue), and the crashes of revision 3 (peer → queue, supernode → queue). The
//! disconnect flow and the crash orphans (peer → queue) are not transitions of their own: a
//! shutdown or a supernode crash moves the supernode **and a batch of its peers** into the queue
//! at once. Each
//! of the `n` peers is attached to one of the `s + S0·M` serving units uniformly, so the batch is
//! drawn Binomial(n, 1/(s + S0·M)) ([`orphan_probability`]), whose mean times the shutdown rate
//! is `M` times the disconnect flow `φ·S·N/(S + S0)`. The expected drift is therefore the fluid
//! right-hand side (the fluid limit is the same); the noise is not that of independent
//! disconnects, since the peers of one supernode leave together.
//!
//! The reboot wave reboots each peer with probability `f` and each supernode with probability
//! `c` (binomial draws), and the surviving peers attached to rebooted supernodes —
//! Binomial(n', k/(s + S0·M)) for `k` rebooted supernodes — rejoin the queue with them. Spread waves are per-machine hazards.
//! Interventions switch parameters at their times. Every run is seeded from `(seed, run)` alone,
//! so results do not depend on the number of threads.

use crate::analysis::tipping::{fate, Landscape, TippingOptions};
use crate::error::Error;
use crate::model::{
    flows_in, Compartment, FlowSpec, P2p, P2pFlow, P2pIdx, Sizes, System, P2P_FLOWS,
};
use crate::output::num;
use crate::scenario::Scenario;
use crate::simulate::Outcome;
use crate::solve::SolverStats;
use nalgebra::SVector;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Binomial, Distribution, Poisson};
use rayon::prelude::*;

/// How runs are simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StochasticMethod {
    /// Exact event-by-event simulation.
    Exact,
    /// Tau-leaping with steps that change no population by more than about 1 %.
    TauLeap,
    /// Exact below 10^5 users, tau-leaping above.
    Auto,
}

impl std::str::FromStr for StochasticMethod {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self, Error> {
        match text {
            "exact" => Ok(Self::Exact),
            "tau" => Ok(Self::TauLeap),
            "auto" => Ok(Self::Auto),
            other => Err(Error::Parse {
                file: None,
                line: None,
                message: format!("unknown stochastic method `{other}`: must be exact, tau or auto"),
            }),
        }
    }
}

/// One run's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Run index.
    pub run: usize,
    /// Lowest peer fraction.
    pub min_peers: f64,
    /// Fate of the final state (the fluid model from there decides the side of the saddle).
    pub outcome: Outcome,
    /// Recovery time (minutes), defined as for the fluid model (the healthy level of the
    /// starting parameters, or of the final ones when the run starts down) but observed only
    /// up to `t_end`; `None` if peers never returned by then or there is no healthy state.
    pub recovery_time: Option<f64>,
    /// Peer fractions on the output grid (every `dt` minutes).
    pub peers: Vec<f64>,
    /// Supernode fractions on the same grid.
    pub supernodes: Vec<f64>,
    /// Number of transitions (exact) or leaps (tau-leaping).
    pub events: u64,
    /// Events after which the counts failed to add up (`n + s + q > m`, a negative offline
    /// count), checked after every event: 0 in a correct run, where every transition moves
    /// users between compartments and the population is conserved exactly.
    pub unbalanced: u64,
}

/// Counts of peers, supernodes, queue; offline is the rest of `m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Peers.
    pub n: u64,
    /// Supernodes.
    pub s: u64,
    /// Queue.
    pub q: u64,
    /// Users.
    pub m: u64,
}

impl Counts {
    /// Offline users.
    pub fn offline(&self) -> u64 {
        self.m - self.n - self.s - self.q
    }
    /// Whether `n + s + q <= m` (without overflow), so that the offline count is >= 0.
    fn balanced(&self) -> bool {
        self.n
            .checked_add(self.s)
            .and_then(|v| v.checked_add(self.q))
            .is_some_and(|v| v <= self.m)
    }
    /// Fractions `(N, S, Q)` of the users.
    pub fn fractions(&self) -> SVector<f64, 3> {
        let m = self.m as f64;
        SVector::from([self.n as f64 / m, self.s as f64 / m, self.q as f64 / m])
    }
    /// Users in one compartment.
    pub fn count(&self, at: Compartment) -> u64 {
        match at {
            Compartment::Peers => self.n,
            Compartment::Supernodes => self.s,
            Compartment::Queue => self.q,
            Compartment::Offline => self.offline(),
        }
    }
    /// Moves `k` users along `flow` (at most the users in `flow.from`); offline is the rest.
    fn transfer(&mut self, flow: &FlowSpec, k: u64) {
        if let Some(v) = self.slot(flow.from) {
            *v -= k;
        }
        if let Some(v) = self.slot(flow.to) {
            *v += k;
        }
    }
    fn slot(&mut self, at: Compartment) -> Option<&mut u64> {
        match at {
            Compartment::Peers => Some(&mut self.n),
            Compartment::Supernodes => Some(&mut self.s),
            Compartment::Queue => Some(&mut self.q),
            Compartment::Offline => None,
        }
    }
}

/// The chain's transitions: the first nine flows of [`P2P_FLOWS`], in [`P2pFlow`] order (sign-on
/// to supernode crash), each moving one user. The disconnect flow and the crash orphans have no
/// transition of their own: each shutdown or supernode crash carries a batch of its supernode's
/// peers to the queue ([`orphan_probability`]).
pub const TRANSITIONS: usize = 9;

/// Whether transition `j` takes a supernode down with its peers (a shutdown or a crash).
fn takes_peers(j: usize) -> bool {
    j == P2pFlow::Shutdown as usize || j == P2pFlow::SnCrash as usize
}

/// Rates (per minute) of the [`TRANSITIONS`] transitions at `c` with parameters `p`: `M` times the
/// flows of [`P2p::flows`] at the fractions of `c` (a rate that is not finite counts as 0).
pub fn transition_rates(c: &Counts, p: &[f64]) -> [f64; TRANSITIONS] {
    let sizes = Sizes {
        peers: c.n as f64,
        supernodes: c.s as f64,
        queue: c.q as f64,
        offline: c.offline() as f64,
        dedicated: p[P2pIdx::Dedicated as usize] * c.m as f64,
    };
    let flows = flows_in(&c.fractions(), &sizes, p).to_array();
    std::array::from_fn(|j| {
        let r = flows[j];
        if r.is_finite() {
            r.max(0.0)
        } else {
            0.0
        }
    })
}

fn binomial(rng: &mut Xoshiro256PlusPlus, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    Binomial::new(n, p).map(|b| b.sample(rng)).unwrap_or(0)
}

fn poisson(rng: &mut Xoshiro256PlusPlus, mean: f64) -> u64 {
    if mean <= 0.0 {
        return 0;
    }
    Poisson::new(mean)
        .map(|d: Poisson<f64>| d.sample(rng) as u64)
        .unwrap_or(0)
}

/// The chance that a given peer is attached to one of `k` serving units that go down at `c`:
/// each peer is attached to one of the `s + S0·M` units uniformly (0 without any unit). A
/// shutdown's batch is Binomial(n, this chance), so its mean times the shutdown rate is the
/// disconnect flow.
pub fn orphan_probability(c: &Counts, k: u64, p: &[f64]) -> f64 {
    let units = c.s as f64 + p[P2pIdx::Dedicated as usize] * c.m as f64;
    if units <= 0.0 {
        return 0.0;
    }
    (k as f64 / units).min(1.0)
}

/// Peers orphaned when `k` of the serving units go down.
fn orphans(rng: &mut Xoshiro256PlusPlus, c: &Counts, k: u64, p: &[f64]) -> u64 {
    binomial(rng, c.n, orphan_probability(c, k, p))
}

/// Moves `k` users along transition `j` (tau-leaping clamps `k` to what is available); a
/// shutdown's batch of peers follows the disconnect flow.
fn apply(rng: &mut Xoshiro256PlusPlus, c: &mut Counts, j: usize, k: u64, p: &[f64]) {
    let flow = &P2P_FLOWS[j];
    let k = k.min(c.count(flow.from));
    // Drawn before the supernodes leave: their peers were attached to the units counted now.
    let batch = if takes_peers(j) {
        orphans(rng, c, k, p)
    } else {
        0
    };
    c.transfer(flow, k);
    c.transfer(&P2P_FLOWS[P2pFlow::Disconnect as usize], batch);
}

/// Longest scenario (minutes) the stochastic chain runs.
pub const MAX_CHAIN_T_END: f64 = 1e8;

/// Runs `runs` stochastic realisations of a scenario with `m` users; run `i` is seeded from
/// `(seed, i)` only.
pub fn simulate_runs(
    sc: &Scenario,
    m: u64,
    runs: usize,
    seed: u64,
    method: StochasticMethod,
    dt: f64,
) -> Result<Vec<Run>, Error> {
    sc.validate(&P2p)?;
    sc.require_stepwise("the stochastic chain")?;
    // The chain's events grow with the time it runs; beyond a century of minutes a run would
    // not end in any useful time.
    if sc.t_end > MAX_CHAIN_T_END {
        return Err(Error::OutOfRange {
            name: "t_end".into(),
            value: sc.t_end,
            range: format!(
                "at most {MAX_CHAIN_T_END:e} min (about 190 years) for the stochastic chain, whose events grow with the time simulated"
            ),
        });
    }
    if m == 0 {
        return Err(Error::OutOfRange {
            name: "population".into(),
            value: 0.0,
            range: "at least 1".into(),
        });
    }
    if runs == 0 {
        return Err(Error::OutOfRange {
            name: "runs".into(),
            value: 0.0,
            range: "at least 1".into(),
        });
    }
    // Every run keeps its grid of outputs (t = 0 and t_end at least): refuse a grid that would
    // not fit before any work, naming what makes it too large.
    let max_rows = crate::simulate::MAX_ROWS as f64;
    if runs as f64 * 2.0 > max_rows {
        return Err(Error::OutOfRange {
            name: "runs".into(),
            value: runs as f64,
            range: format!(
                "at most {} (each run keeps at least 2 output rows, {} rows in all)",
                crate::simulate::MAX_ROWS / 2,
                crate::simulate::MAX_ROWS
            ),
        });
    }
    let rows = (sc.t_end / dt + 1.0) * runs as f64;
    if !(dt.is_finite() && dt > 0.0 && rows <= max_rows) {
        return Err(Error::OutOfRange {
            name: "dt".into(),
            value: dt,
            range: format!(
                "finite, > 0 and at least t_end/({}/runs − 1) = {:e} (the runs' output grids would hold {rows:.3e} rows)",
                crate::simulate::MAX_ROWS,
                sc.t_end / (max_rows / runs as f64 - 1.0)
            ),
        });
    }
    let p0 = sc.params.values().to_vec();
    let land0 = Landscape::new(&P2p, &p0)?;
    let pf = sc.final_params();
    let land_f = Landscape::new(&P2p, pf.values())?;
    // Recovery is measured as in the fluid model: against the starting parameters' healthy
    // state, or the final parameters' when the run starts down, or not at all.
    let reference = Reference {
        start: land0.rest_state(),
        level: [&land0, &land_f]
            .into_iter()
            .find(|l| l.is_healthy())
            .map(|l| 0.95 * l.rest_state()[0]),
        end: &land_f,
    };
    let exact = match method {
        StochasticMethod::Exact => true,
        StochasticMethod::TauLeap => false,
        StochasticMethod::Auto => m < 100_000,
    };
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let out = (0..runs)
        .into_par_iter()
        .map(|run| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(
                seed ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            let r = one_run(sc, m, run, exact, dt, &reference, &mut rng);
            let k = finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            crate::progress::update("stochastic runs", k, runs);
            r
        })
        .collect();
    crate::progress::finish("stochastic runs");
    out
}

/// What every run is measured against.
struct Reference<'a> {
    /// The state runs start in (the starting parameters' rest state) unless the scenario
    /// gives one.
    start: SVector<f64, 3>,
    /// 95 % of the healthy peers that recovery is measured against, if there is a healthy
    /// state to recover to.
    level: Option<f64>,
    /// The final parameters' equilibria, which decide the fate.
    end: &'a Landscape<3>,
}

/// One realisation of the chain from `t = 0` to `t_end`, drawing from `rng`.
fn one_run(
    sc: &Scenario,
    m: u64,
    run: usize,
    exact: bool,
    dt: f64,
    reference: &Reference,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<Run, Error> {
    let mut state = RunState::new(sc, m, dt, reference, rng);
    while state.t < sc.t_end {
        state.interval(exact);
    }
    state.finish(run, reference)
}

/// The counts a run starts from: the scenario's initial state or the reference start, rounded
/// to users (the queue trimmed if rounding overfills the population).
fn initial_counts(sc: &Scenario, m: u64, reference: &Reference) -> Counts {
    let mf = m as f64;
    let round = |x: f64| (x * mf).round().max(0.0) as u64;
    let start = match &sc.initial {
        Some(v) => SVector::from_iterator(v.iter().copied()),
        None => reference.start,
    };
    let mut c = Counts {
        n: round(start[0]),
        s: round(start[1]),
        q: round(start[2]),
        m,
    };
    if c.n + c.s + c.q > m {
        c.q = m - c.n.min(m) - c.s.min(m - c.n.min(m));
    }
    c
}

/// One run as it advances: the counts, the parameters in force, what is still scheduled, the
/// work done and what is recorded.
struct RunState<'a> {
    sc: &'a Scenario,
    rng: &'a mut Xoshiro256PlusPlus,
    c: Counts,
    p: Vec<f64>,
    t: f64,
    /// The next intervention not yet applied.
    next_iv: usize,
    /// Whether the wave is over (or there is none).
    shock_done: bool,
    /// Reboot hazards of peers and supernodes during a spread wave.
    eta: (f64, f64),
    events: u64,
    unbalanced: u64,
    /// Exact steps still to take before a leap is considered again.
    exact_left: u32,
    trace: Trace,
}

impl<'a> RunState<'a> {
    /// A run at `t = 0` in its initial counts with the scenario's starting parameters.
    fn new(
        sc: &'a Scenario,
        m: u64,
        dt: f64,
        reference: &Reference,
        rng: &'a mut Xoshiro256PlusPlus,
    ) -> Self {
        let shock = sc.shock;
        Self {
            sc,
            rng,
            c: initial_counts(sc, m, reference),
            p: sc.params.values().to_vec(),
            t: 0.0,
            next_iv: 0,
            shock_done: shock.is_none(),
            eta: shock
                .filter(|s| s.is_spread())
                .map_or((0.0, 0.0), |s| s.hazards()),
            events: 0,
            unbalanced: 0,
            exact_left: 0,
            trace: Trace::new(sc, m, dt, reference),
        }
    }

    /// Runs from one deterministic time to the next: the actions and outputs due now, then
    /// events (exact) or leaps up to the next such time.
    fn interval(&mut self, exact: bool) {
        let mut t_next = self.next_scheduled();
        // Scheduled actions at t: interventions, then the wave, then output (which, as in the
        // fluid output, holds the state after a wave at that time).
        self.apply_interventions();
        self.apply_wave();
        self.trace.record_until(self.t, &self.c);
        self.trace.observe(self.t, &self.c);
        if t_next <= self.t {
            t_next = (self.t + self.trace.dt).min(self.sc.t_end);
        }
        let t = self.t;
        let in_window = self
            .sc
            .shock
            .is_some_and(|s| s.is_spread() && t >= s.at - 1e-12 && t < s.at + s.window - 1e-12);
        // Advance to t_next by events (exact) or leaps.
        while self.t < t_next {
            let r = self.rates(in_window);
            let total: f64 = r.iter().sum();
            if exact {
                if !self.exact_step(&r, total, t_next) {
                    break;
                }
            } else {
                self.tau_leap_step(&r, total, t_next);
            }
            self.trace.observe(self.t, &self.c);
        }
    }

    /// Next deterministic time: output, shock, window end, intervention, end.
    fn next_scheduled(&self) -> f64 {
        let t = self.t;
        let mut t_next = self.sc.t_end.min(self.trace.next_out.max(t));
        if let Some(s) = self.sc.shock {
            if !self.shock_done && s.at >= t {
                t_next = t_next.min(s.at);
            }
            if s.is_spread() && s.at + s.window > t {
                t_next = t_next.min(s.at + s.window);
            }
        }
        if let Some(iv) = self.sc.interventions.get(self.next_iv) {
            t_next = t_next.min(iv.at);
        }
        t_next
    }

    /// Sets the parameters of every intervention due by now.
    fn apply_interventions(&mut self) {
        while let Some(iv) = self.sc.interventions.get(self.next_iv) {
            if iv.at > self.t + 1e-12 {
                break;
            }
            for &(i, v) in &iv.set {
                self.p[i] = v;
            }
            self.next_iv += 1;
        }
    }

    /// Reboots an instantaneous wave due now (peers, supernodes and the orphans of rebooted
    /// supernodes join the queue), or marks a spread wave over once its window has passed.
    fn apply_wave(&mut self) {
        let Some(s) = self.sc.shock else { return };
        let (c, t) = (&mut self.c, self.t);
        if !self.shock_done && s.at <= t + 1e-12 && !s.is_spread() {
            let kn = binomial(self.rng, c.n, s.fraction);
            let ks = binomial(self.rng, c.s, s.sn_fraction);
            c.n -= kn;
            let b = orphans(self.rng, c, ks, &self.p);
            c.s -= ks;
            c.n -= b;
            c.q += kn + ks + b;
            self.unbalanced += u64::from(!c.balanced());
            self.shock_done = true;
        }
        if !self.shock_done && s.is_spread() && t >= s.at + s.window - 1e-12 {
            self.shock_done = true;
        }
    }

    /// The rates of the transitions, and of peer and supernode reboots inside a spread wave.
    fn rates(&self, in_window: bool) -> Vec<f64> {
        let mut r = transition_rates(&self.c, &self.p).to_vec();
        if in_window {
            r.push(self.eta.0 * self.c.n as f64);
            r.push(self.eta.1 * self.c.s as f64);
        }
        r
    }

    /// One exact (Gillespie) event before `t_next` drawn from the rates `r` (sum `total`); false,
    /// with the clock at `t_next`, when the next event would come after it.
    fn exact_step(&mut self, r: &[f64], total: f64, t_next: f64) -> bool {
        if total <= 0.0 {
            self.t = t_next;
            return false;
        }
        let wait = -(1.0 - self.rng.random::<f64>()).ln() / total;
        if self.t + wait > t_next {
            self.t = t_next;
            return false;
        }
        self.t += wait;
        let mut u = self.rng.random::<f64>() * total;
        let mut j = 0;
        while j + 1 < r.len() && u >= r[j] {
            u -= r[j];
            j += 1;
        }
        fire(self.rng, &mut self.c, j, 1, &self.p);
        self.events += 1;
        self.unbalanced += u64::from(!self.c.balanced());
        true
    }

    /// One tau-leap towards `t_next` with the rates `r` (sum `total`): Poisson numbers of each
    /// transition over the step of [`leap_length`]; when that step would fire fewer than ten
    /// events in expectation, a hundred exact events instead (as fast, and exact).
    fn tau_leap_step(&mut self, r: &[f64], total: f64, t_next: f64) {
        if self.exact_left > 0 {
            self.exact_left -= 1;
            self.exact_step(r, total, t_next);
            return;
        }
        let tau = leap_length(&self.c, r, &self.p, LEAP_EPSILON).min(t_next - self.t);
        if total * tau < 10.0 {
            self.exact_left = 99;
            self.exact_step(r, total, t_next);
            return;
        }
        for (j, rj) in r.iter().enumerate() {
            let k = poisson(self.rng, rj * tau);
            if k > 0 {
                fire(self.rng, &mut self.c, j, k, &self.p);
            }
        }
        self.unbalanced += u64::from(!self.c.balanced());
        self.t += tau;
        self.events += 1;
    }

    /// The run's result at `t_end`: the grid filled, the fate of the final state, the recovery.
    fn finish(mut self, run: usize, reference: &Reference) -> Result<Run, Error> {
        self.trace.fill(&self.c);
        // Which side of the saddle: the fluid model from the final state decides.
        let pf = self.sc.final_params();
        let sys = System::new(&P2p, pf.values());
        let mut st = SolverStats::default();
        let f = fate(
            &sys,
            self.c.fractions(),
            reference.end,
            &TippingOptions::default().solve,
            &mut st,
        )?;
        Ok(Run {
            run,
            min_peers: self.trace.min_peers,
            outcome: f.outcome,
            recovery_time: self.trace.recovery_time(),
            peers: self.trace.peers,
            supernodes: self.trace.supernodes,
            events: self.events,
            unbalanced: self.unbalanced,
        })
    }
}

/// What a run records: peers and supernodes on the output grid, the lowest peers, and when
/// peers fell below the recovery level and came back after the wave.
struct Trace {
    /// Users, to turn counts into fractions.
    mf: f64,
    /// The output grid's interval.
    dt: f64,
    t_end: f64,
    peers: Vec<f64>,
    supernodes: Vec<f64>,
    /// The next output time.
    next_out: f64,
    min_peers: f64,
    /// 95 % of the healthy peers, if there is a healthy state to recover to.
    level: Option<f64>,
    /// When the wave starts (recovery is counted from there).
    from: f64,
    fell: Option<f64>,
    back: Option<f64>,
}

impl Trace {
    /// An empty record of a run of `m` users with outputs every `dt` minutes.
    fn new(sc: &Scenario, m: u64, dt: f64, reference: &Reference) -> Self {
        Self {
            mf: m as f64,
            dt,
            t_end: sc.t_end,
            peers: vec![],
            supernodes: vec![],
            next_out: 0.0,
            min_peers: f64::INFINITY,
            level: reference.level,
            from: sc.shock.map_or(0.0, |s| s.at),
            fell: None,
            back: None,
        }
    }

    /// Notes the peers at `t`: the lowest so far, and the first fall below the level and the
    /// first climb back after it, from the wave on.
    fn observe(&mut self, t: f64, c: &Counts) {
        // Without a healthy state there is no level to fall below or climb back to.
        let level = self.level.unwrap_or(f64::NEG_INFINITY);
        let x = c.n as f64 / self.mf;
        self.min_peers = self.min_peers.min(x);
        if t >= self.from {
            if self.fell.is_none() && x < level {
                self.fell = Some(t);
            } else if self.fell.is_some() && self.back.is_none() && x >= level {
                self.back = Some(t);
            }
        }
    }

    /// Records the state `c` at every output time due by `t`.
    fn record_until(&mut self, t: f64, c: &Counts) {
        while self.next_out <= t + 1e-12 && self.next_out <= self.t_end {
            self.record(c);
            self.next_out += self.dt;
        }
    }

    /// Fills the grid to `t_end` with the final state `c`.
    fn fill(&mut self, c: &Counts) {
        while self.peers.len() < (self.t_end / self.dt).floor() as usize + 1 {
            self.record(c);
        }
    }

    /// Appends the peer and supernode fractions of `c` to the grid.
    fn record(&mut self, c: &Counts) {
        self.peers.push(c.n as f64 / self.mf);
        self.supernodes.push(c.s as f64 / self.mf);
    }

    /// Minutes from the wave until peers came back to the level (0 if they never fell below
    /// it); `None` if they did not come back or there is no level.
    fn recovery_time(&self) -> Option<f64> {
        match (self.fell, self.back) {
            _ if self.level.is_none() => None,
            (None, _) => Some(0.0),
            (Some(_), Some(b)) => Some(b - self.from),
            (Some(_), None) => None,
        }
    }
}

/// The flow that transition `j` of a run moves users along: the model's [`TRANSITIONS`], then
/// a peer reboot and a supernode reboot inside a spread wave (per-machine hazards, moving users
/// as a crash does: a rebooted supernode takes its peers along).
fn flow_of(j: usize) -> usize {
    match j {
        TRANSITIONS => P2pFlow::Crash as usize,
        j if j == TRANSITIONS + 1 => P2pFlow::SnCrash as usize,
        j => j,
    }
}

/// Fires transition `j` ([`flow_of`]) `k` times.
fn fire(rng: &mut Xoshiro256PlusPlus, c: &mut Counts, j: usize, k: u64, p: &[f64]) {
    apply(rng, c, flow_of(j), k, p);
}

/// The bound on the relative change of each population per leap (the model-file chain's
/// default too).
pub const LEAP_EPSILON: f64 = 0.03;

/// The tau-leaping step at `c` with rates `r` (the [`TRANSITIONS`], then a peer and a supernode
/// reboot inside a spread wave): the longest
/// step over which the expected change of every population (peers, supernodes, queue,
/// offline) and its standard deviation stay within `epsilon` of it, or one user for small
/// populations (the per-species rule of Cao, Gillespie and Petzold, 2006). A shutdown, a
/// supernode crash or reboot moves its supernode and a batch of peers with mean
/// `β = n/(s + S0·M)` and second moment about `β + β²`. Infinite when nothing changes.
pub fn leap_length(c: &Counts, r: &[f64], p: &[f64], epsilon: f64) -> f64 {
    let units = c.s as f64 + p[P2pIdx::Dedicated as usize] * c.m as f64;
    let beta = if units > 0.0 { c.n as f64 / units } else { 0.0 };
    // (mean, second moment) of each population's change per firing, N, S, Q, offline.
    let mut mu = [0.0_f64; 4];
    let mut var = [0.0_f64; 4];
    for (j, rj) in r.iter().enumerate() {
        let flow = &P2P_FLOWS[flow_of(j)];
        let v = flow.jump();
        let mut d = [f64::from(v[0]), f64::from(v[1]), f64::from(v[2]), 0.0];
        d[3] = -(d[0] + d[1] + d[2]);
        let mut second = d.map(|x| x * x);
        if takes_peers(flow_of(j)) {
            // The batch of peers that follows the supernode to the queue.
            d[0] -= beta;
            d[2] += beta;
            second[0] = beta + beta * beta;
            second[2] = 1.0 + 3.0 * beta + beta * beta;
        }
        for i in 0..4 {
            mu[i] += d[i] * rj;
            var[i] += second[i] * rj;
        }
    }
    let sizes = [c.n, c.s, c.q, c.offline()];
    let mut tau = f64::INFINITY;
    for i in 0..4 {
        let bound = (epsilon * sizes[i] as f64).max(1.0);
        if mu[i] != 0.0 {
            tau = tau.min(bound / mu[i].abs());
        }
        if var[i] > 0.0 {
            tau = tau.min(bound * bound / var[i]);
        }
    }
    tau
}

/// Quantiles of the peer fraction across runs at each output time: rows
/// `(t, [q05, q25, q50, q75, q95])` (linear interpolation between order statistics).
pub fn peer_quantiles(runs: &[Run], dt: f64) -> Vec<(f64, [f64; 5])> {
    let len = runs.iter().map(|r| r.peers.len()).min().unwrap_or(0);
    (0..len)
        .map(|k| {
            let mut v: Vec<f64> = runs.iter().map(|r| r.peers[k]).collect();
            v.sort_by(f64::total_cmp);
            let q = |p: f64| {
                let x = p * (v.len() - 1) as f64;
                let (i, f) = (x.floor() as usize, x.fract());
                if i + 1 < v.len() {
                    v[i] * (1.0 - f) + v[i + 1] * f
                } else {
                    v[i]
                }
            };
            (k as f64 * dt, [q(0.05), q(0.25), q(0.5), q(0.75), q(0.95)])
        })
        .collect()
}

/// Writes one CSV row per run: `run,min_peers,outcome,recovery_time` (empty when the run did
/// not recover).
pub fn runs_csv(out: &mut dyn std::io::Write, runs: &[Run]) -> Result<(), Error> {
    let err = |e| Error::csv_write("CSV output", e);
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["run", "min_peers", "outcome", "recovery_time"])
        .map_err(err)?;
    for r in runs {
        csv.write_record([
            format!("{}", r.run),
            num(r.min_peers),
            r.outcome.name().to_string(),
            r.recovery_time.map_or(String::new(), num),
        ])
        .map_err(err)?;
    }
    csv.flush().map_err(|e| Error::write("CSV output", e))
}

/// Writes the quantiles of [`peer_quantiles`] as CSV: `t,q05,q25,q50,q75,q95`.
pub fn quantiles_csv(out: &mut dyn std::io::Write, rows: &[(f64, [f64; 5])]) -> Result<(), Error> {
    let err = |e| Error::csv_write("CSV output", e);
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["t", "q05", "q25", "q50", "q75", "q95"])
        .map_err(err)?;
    for (t, q) in rows {
        let mut rec = vec![num(*t)];
        rec.extend(q.iter().map(|v| num(*v)));
        csv.write_record(&rec).map_err(err)?;
    }
    csv.flush().map_err(|e| Error::write("CSV output", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Model, ParamSet};

    #[test]
    fn each_transition_moves_users_along_its_flow() {
        let p = ParamSet::defaults(P2p.params()).values().to_vec();
        let before = Counts {
            n: 500,
            s: 20,
            q: 30,
            m: 1000,
        };
        let state = |c: &Counts| [c.n, c.s, c.q].map(|v| v as i64);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for (j, flow) in P2P_FLOWS[..TRANSITIONS].iter().enumerate() {
            for k in [3, 10_000] {
                let mut c = before;
                apply(&mut rng, &mut c, j, k, &p);
                // Tau-leaping's clamp: never more than the source holds.
                let moved = k.min(before.count(flow.from)) as i64;
                let change: Vec<i64> = state(&c)
                    .iter()
                    .zip(state(&before))
                    .map(|(a, b)| a - b)
                    .collect();
                let batch = if takes_peers(j) { -change[0] } else { 0 };
                assert!(
                    (0..=before.n as i64).contains(&batch),
                    "{}: batch {batch}",
                    flow.name
                );
                let disconnect = P2P_FLOWS[P2pFlow::Disconnect as usize].jump();
                let expected: Vec<i64> = (0..3)
                    .map(|i| moved * i64::from(flow.jump()[i]) + batch * i64::from(disconnect[i]))
                    .collect();
                assert_eq!(change, expected, "{} × {k}", flow.name);
            }
        }
    }
}
