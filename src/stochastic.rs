//! The reference model as a continuous-time Markov chain on integer counts of `M` users:
//! exact simulation (Gillespie's direct method) for small `M`, tau-leaping for large `M`.
//!
//! The rate law is the fluid model's, [`P2p::flows`], and the jumps are its stoichiometry,
//! [`P2P_FLOWS`]: each of the first seven flows becomes a transition moving one user, at `M`
//! times the fluid flow evaluated at the current fractions ([`transition_rates`]): sign-on
//! (offline → queue), sign-off (peer → offline), supernode sign-off (supernode → offline), login
//! (queue → peer), give-up (queue → offline), promotion (peer → supernode), and overload shutdown
//! (supernode → queue). The eighth, the disconnect flow (peer → queue), is not a transition of its
//! own: a shutdown moves the supernode **and a batch of its peers** into the queue at once. Each
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

/// The chain's transitions: the first seven flows of [`P2P_FLOWS`], in [`P2pFlow`] order (sign-on
/// to shutdown), each moving one user. The disconnect flow has no transition of its own: each
/// shutdown carries a batch of its supernode's peers along it ([`orphan_probability`]).
pub const TRANSITIONS: usize = 7;

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
    let batch = if j == P2pFlow::Shutdown as usize {
        orphans(rng, c, k, p)
    } else {
        0
    };
    c.transfer(flow, k);
    c.transfer(&P2P_FLOWS[P2pFlow::Disconnect as usize], batch);
}

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
    // Every run keeps its grid of outputs: refuse a grid that would not fit before any work.
    let rows = (sc.t_end / dt + 1.0) * runs as f64;
    if !(dt.is_finite() && dt > 0.0 && rows <= crate::simulate::MAX_ROWS as f64) {
        return Err(Error::OutOfRange {
            name: "dt".into(),
            value: dt,
            range: format!(
                "finite, > 0 and at least t_end·runs/{} = {:e} (the runs' output grids would hold {rows:.3e} rows)",
                crate::simulate::MAX_ROWS,
                sc.t_end * runs as f64 / crate::simulate::MAX_ROWS as f64
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

fn one_run(
    sc: &Scenario,
    m: u64,
    run: usize,
    exact: bool,
    dt: f64,
    reference: &Reference,
    rng: &mut Xoshiro256PlusPlus,
) -> Result<Run, Error> {
    let land_f = reference.end;
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
    let mut p = sc.params.values().to_vec();
    let mut t = 0.0;
    let mut next_iv = 0;
    let shock = sc.shock;
    let mut shock_done = shock.is_none();
    let (eta_p, eta_s) = shock
        .filter(|s| s.is_spread())
        .map_or((0.0, 0.0), |s| s.hazards());
    let mut grid = vec![];
    let mut sn_grid = vec![];
    let mut next_out: f64 = 0.0;
    let mut min_peers = f64::INFINITY;
    // Without a healthy state there is no level to fall below or climb back to.
    let level = reference.level.unwrap_or(f64::NEG_INFINITY);
    let from = shock.map_or(0.0, |s| s.at);
    let (mut fell, mut back): (Option<f64>, Option<f64>) = (None, None);
    let mut events = 0u64;
    let mut unbalanced = 0u64;
    let observe = |t: f64,
                   c: &Counts,
                   min_peers: &mut f64,
                   fell: &mut Option<f64>,
                   back: &mut Option<f64>| {
        let x = c.n as f64 / mf;
        *min_peers = min_peers.min(x);
        if t >= from {
            if fell.is_none() && x < level {
                *fell = Some(t);
            } else if fell.is_some() && back.is_none() && x >= level {
                *back = Some(t);
            }
        }
    };
    while t < sc.t_end {
        // Next deterministic time: output, shock, window end, intervention, end.
        let mut t_next = sc.t_end.min(next_out.max(t));
        if let Some(s) = shock {
            if !shock_done && s.at >= t {
                t_next = t_next.min(s.at);
            }
            if s.is_spread() && s.at + s.window > t {
                t_next = t_next.min(s.at + s.window);
            }
        }
        if let Some(iv) = sc.interventions.get(next_iv) {
            t_next = t_next.min(iv.at);
        }
        // Scheduled actions at t: interventions, then the wave, then output (which, as in the
        // fluid output, holds the state after a wave at that time).
        while let Some(iv) = sc.interventions.get(next_iv) {
            if iv.at > t + 1e-12 {
                break;
            }
            for &(i, v) in &iv.set {
                p[i] = v;
            }
            next_iv += 1;
        }
        if let Some(s) = shock {
            if !shock_done && s.at <= t + 1e-12 && !s.is_spread() {
                let kn = binomial(rng, c.n, s.fraction);
                let ks = binomial(rng, c.s, s.sn_fraction);
                c.n -= kn;
                let b = orphans(rng, &c, ks, &p);
                c.s -= ks;
                c.n -= b;
                c.q += kn + ks + b;
                unbalanced += u64::from(!c.balanced());
                shock_done = true;
            }
            if !shock_done && s.is_spread() && t >= s.at + s.window - 1e-12 {
                shock_done = true;
            }
        }
        while next_out <= t + 1e-12 && next_out <= sc.t_end {
            grid.push(c.n as f64 / mf);
            sn_grid.push(c.s as f64 / mf);
            next_out += dt;
        }
        observe(t, &c, &mut min_peers, &mut fell, &mut back);
        if t_next <= t {
            t_next = (t + dt).min(sc.t_end);
        }
        let in_window = shock
            .is_some_and(|s| s.is_spread() && t >= s.at - 1e-12 && t < s.at + s.window - 1e-12);
        // Advance to t_next by events (exact) or leaps.
        while t < t_next {
            let mut r = transition_rates(&c, &p).to_vec();
            if in_window {
                r.push(eta_p * c.n as f64);
                r.push(eta_s * c.s as f64);
            }
            let total: f64 = r.iter().sum();
            if exact {
                if total <= 0.0 {
                    t = t_next;
                    break;
                }
                let wait = -(1.0 - rng.random::<f64>()).ln() / total;
                if t + wait > t_next {
                    t = t_next;
                    break;
                }
                t += wait;
                let mut u = rng.random::<f64>() * total;
                let mut j = 0;
                while j + 1 < r.len() && u >= r[j] {
                    u -= r[j];
                    j += 1;
                }
                fire(rng, &mut c, j, 1, &p);
                events += 1;
                unbalanced += u64::from(!c.balanced());
            } else {
                // Step so that no population changes by more than ~1 % in expectation.
                let sizes = [c.n.max(1), c.s.max(1), c.q.max(1), c.offline().max(1)];
                let smallest = *sizes.iter().min().unwrap_or(&1) as f64;
                let tau = if total > 0.0 {
                    (0.01 * smallest.max(10.0) / total).max(1e-3)
                } else {
                    t_next - t
                };
                let tau = tau.min(t_next - t);
                for (j, rj) in r.iter().enumerate() {
                    let k = poisson(rng, rj * tau);
                    if k > 0 {
                        fire(rng, &mut c, j, k, &p);
                    }
                }
                unbalanced += u64::from(!c.balanced());
                t += tau;
                events += 1;
            }
            observe(t, &c, &mut min_peers, &mut fell, &mut back);
        }
    }
    while grid.len() < (sc.t_end / dt).floor() as usize + 1 {
        grid.push(c.n as f64 / mf);
        sn_grid.push(c.s as f64 / mf);
    }
    // Which side of the saddle: the fluid model from the final state decides.
    let pf = sc.final_params();
    let sys = System::new(&P2p, pf.values());
    let mut st = SolverStats::default();
    let f = fate(
        &sys,
        c.fractions(),
        land_f,
        &TippingOptions::default().solve,
        &mut st,
    )?;
    let recovery_time = match (fell, back) {
        _ if reference.level.is_none() => None,
        (None, _) => Some(0.0),
        (Some(_), Some(b)) => Some(b - from),
        (Some(_), None) => None,
    };
    Ok(Run {
        run,
        min_peers,
        outcome: f.outcome,
        recovery_time,
        peers: grid,
        supernodes: sn_grid,
        events,
        unbalanced,
    })
}

/// Fires transition `j` (0–6 the model's, 7 a peer reboot, 8 a supernode reboot) `k` times.
fn fire(rng: &mut Xoshiro256PlusPlus, c: &mut Counts, j: usize, k: u64, p: &[f64]) {
    match j {
        7 => {
            let k = k.min(c.n);
            c.n -= k;
            c.q += k;
        }
        8 => apply(rng, c, 6, k, p),
        _ => apply(rng, c, j, k, p),
    }
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
            format!("{}", r.min_peers),
            r.outcome.name().to_string(),
            r.recovery_time.map_or(String::new(), |t| format!("{t}")),
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
        let mut rec = vec![format!("{t}")];
        rec.extend(q.iter().map(|v| format!("{v}")));
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
                let batch = if j == P2pFlow::Shutdown as usize {
                    -change[0]
                } else {
                    0
                };
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
