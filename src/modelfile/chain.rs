//! The stochastic twin of a model file: its transitions as a continuous-time Markov chain on
//! whole counts. With `M` individuals per unit of state, the state `x` is the counts over `M`;
//! each transition fires at `M · rate(t, x)` and moves its `jump` in counts (the state by
//! `jump/M`). The fluid model is the chain's `M → ∞` limit (Kurtz); for rates linear in the
//! state the chain's mean equals the fluid solution at every `M`.
//!
//! Two methods: exact simulation (Gillespie's direct method) and tau-leaping with the step rule
//! of Cao, Gillespie and Petzold (J. Chem. Phys. 124, 044109, 2006) per state: a leap of length
//! τ changes each count by at most about ε of itself in mean and in standard deviation
//! (ε = 0.03), so a large population does not force small leaps because a small one is present;
//! when τ would cover fewer than ten events the chain takes exact steps instead. Parameters
//! follow the scenario's interventions; a wave spread over `W` adds the shock transitions with
//! hazards `−ln(1 − f)/W` while it lasts; an instantaneous wave is the chain of the shock
//! transitions run for unit time with hazards `−ln(1 − f)`, the stochastic form of the fluid
//! model's time-1 map. A transition that would take a count below zero does not fire (its
//! propensity is 0 there): a fluid rate need not vanish at the boundary, a count must stay
//! whole and non-negative. Run `i` is seeded from `(seed, i)` alone.

use super::{FileModel, ModelFile, Transition};
use crate::error::Error;
use crate::scenario::Scenario;
use crate::stochastic::StochasticMethod;
use nalgebra::SVector;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Poisson};

/// How the chain is run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainOptions {
    /// Individuals per unit of state (`M`).
    pub population: f64,
    /// Number of runs.
    pub runs: usize,
    /// Seed.
    pub seed: u64,
    /// Exact, tau-leaping, or exact below 10^5 individuals.
    pub method: StochasticMethod,
    /// Interval of the recorded grid.
    pub dt: f64,
    /// The tau-leaping step rule's bound on the relative change of a count per leap.
    pub epsilon: f64,
}

/// One run: the state on the grid `0, dt, 2dt, …, t_end` and the work done.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainRun {
    /// Run index.
    pub run: usize,
    /// The state (counts over `M`) at each grid time.
    pub grid: Vec<Vec<f64>>,
    /// Transitions fired one by one.
    pub events: u64,
    /// Leaps taken.
    pub leaps: u64,
}

/// Most events or leaps a run may take before it is stopped with an error.
pub const MAX_EVENTS: u64 = 2_000_000_000;

struct Chain<'a, const N: usize> {
    file: &'a ModelFile,
    m: f64,
    tau: bool,
    epsilon: f64,
    rng: Xoshiro256PlusPlus,
    counts: Vec<f64>,
    events: u64,
    leaps: u64,
}

impl<'a, const N: usize> Chain<'a, N> {
    /// The transitions of the lists `which` (0: the model's, 1: the shock's), in order.
    fn list(&self, which: &[usize]) -> Vec<&'a Transition> {
        let f: &'a ModelFile = self.file;
        which.iter().flat_map(|&w| f.list(w)).collect()
    }

    /// The propensities `M · rate` of the lists `which` ([`Self::list`]) at the current counts.
    fn propensities(
        &self,
        which: &[usize],
        list: &[&Transition],
        t: f64,
        p: &[f64],
        h: &[f64],
    ) -> Result<Vec<f64>, Error> {
        let x: Vec<f64> = self.counts.iter().map(|c| c / self.m).collect();
        let mut rates = Vec::with_capacity(list.len());
        for &w in which {
            // The register program when the list has one, else the expression programs.
            match &self.file.programs[w] {
                Some(prog) => prog.rates(t, &x, p, h, &mut rates),
                None => {
                    let l = self.file.list(w);
                    self.file.rates(l, t, &x, p, h, |_, r| rates.push(r));
                }
            }
        }
        let counts = &self.counts;
        let mut out = Vec::with_capacity(list.len());
        for (tr, &r) in list.iter().zip(&rates) {
            if !(r.is_finite() && r >= 0.0) {
                return Err(Error::Invalid(format!(
                    "transition `{}` of {} has rate {r} at t = {t}, {}: a rate must be finite and >= 0",
                    tr.name,
                    self.file.source,
                    self.file.state_words(&x)
                )));
            }
            // A transition that would take a count below zero cannot fire (the fluid rate of,
            // say, ALOHA's successes does not vanish with the backlog).
            let possible = tr.jump.iter().all(|&(i, v)| counts[i] + v >= 0.0);
            out.push(if possible { (self.m * r).max(0.0) } else { 0.0 });
        }
        Ok(out)
    }

    fn fire(&mut self, tr: &Transition, times: f64) {
        for &(i, v) in &tr.jump {
            self.counts[i] += v * times;
        }
    }

    /// Runs the chain of `list` (with hazards `h`) from `t0` to `t1` at parameters `p`,
    /// calling `record(t_reached, counts)` before each change of the counts.
    fn advance(
        &mut self,
        which: &[usize],
        (t0, t1): (f64, f64),
        p: &[f64],
        h: &[f64],
        record: &mut dyn FnMut(f64, &[f64]),
    ) -> Result<(), Error> {
        let list: Vec<&Transition> = self.list(which);
        let list = list.as_slice();
        let mut t = t0;
        let mut exact_left = 0u32;
        while t < t1 {
            if self.events + self.leaps > MAX_EVENTS {
                return Err(Error::Invalid(format!(
                    "a run took more than {MAX_EVENTS} events by t = {t}: use tau-leaping or a smaller population"
                )));
            }
            let a = self.propensities(which, list, t, p, h)?;
            let a0: f64 = a.iter().sum();
            if a0 <= 0.0 {
                break;
            }
            if self.tau && exact_left == 0 {
                let tau = self.leap_length(list, &a).min(t1 - t);
                if tau * a0 >= 10.0 {
                    let mut tau = tau;
                    let before = self.counts.clone();
                    loop {
                        for (tr, aj) in list.iter().zip(&a) {
                            let k = if *aj * tau > 0.0 {
                                Poisson::new(aj * tau).map_or(0.0, |d| d.sample(&mut self.rng))
                            } else {
                                0.0
                            };
                            self.fire(tr, k);
                        }
                        if self.counts.iter().all(|c| *c >= 0.0) {
                            break;
                        }
                        // A count went negative: the leap was too long for it.
                        self.counts.clone_from(&before);
                        tau *= 0.5;
                    }
                    // Grid times inside the leap hold the counts it started from (recorded
                    // before the change, as after an exact event: recording the counts the
                    // leap reached put every grid time a leap ahead, a bias of order ε).
                    record(t + tau, &before);
                    self.leaps += 1;
                    t += tau;
                    continue;
                }
                // Fewer than ten events expected in a leap: a hundred exact steps.
                exact_left = 100;
            }
            let wait = -(1.0 - self.rng.random::<f64>()).ln() / a0;
            if t + wait >= t1 {
                break;
            }
            t += wait;
            let mut u = self.rng.random::<f64>() * a0;
            let mut j = a.len() - 1;
            for (k, aj) in a.iter().enumerate() {
                if u < *aj {
                    j = k;
                    break;
                }
                u -= aj;
            }
            record(t, &self.counts);
            self.fire(list[j], 1.0);
            self.events += 1;
            exact_left = exact_left.saturating_sub(1);
        }
        Ok(())
    }

    /// The leap length of the per-state rule: for each state with mean change `μ_i` and
    /// variance `σ²_i` per unit time, `min(max(ε·c_i, 1)/|μ_i|, max(ε·c_i, 1)²/σ²_i)`.
    fn leap_length(&self, list: &[&Transition], a: &[f64]) -> f64 {
        let mut tau = f64::INFINITY;
        for (i, c) in self.counts.iter().enumerate() {
            let (mut mu, mut var) = (0.0, 0.0);
            for (tr, aj) in list.iter().zip(a) {
                for &(k, v) in &tr.jump {
                    if k == i {
                        mu += v * aj;
                        var += v * v * aj;
                    }
                }
            }
            let bound = (self.epsilon * c).max(1.0);
            if mu != 0.0 {
                tau = tau.min(bound / mu.abs());
            }
            if var > 0.0 {
                tau = tau.min(bound * bound / var);
            }
        }
        tau
    }
}

/// Runs the chain of `model` for the scenario `sc` from the state `x0`.
pub fn chain_runs<const N: usize>(
    model: &FileModel<N>,
    sc: &Scenario,
    x0: &SVector<f64, N>,
    opts: &ChainOptions,
) -> Result<Vec<ChainRun>, Error> {
    let file = model.file();
    sc.require_stepwise("the stochastic chain")?;
    if !(opts.population.is_finite() && opts.population >= 1.0) {
        return Err(Error::OutOfRange {
            name: "population".into(),
            value: opts.population,
            range: "finite and at least 1".into(),
        });
    }
    if !(opts.dt.is_finite() && opts.dt > 0.0) {
        return Err(Error::OutOfRange {
            name: "dt".into(),
            value: opts.dt,
            range: "finite and > 0".into(),
        });
    }
    if !(opts.epsilon > 0.0 && opts.epsilon < 1.0) {
        return Err(Error::OutOfRange {
            name: "epsilon".into(),
            value: opts.epsilon,
            range: "in (0, 1)".into(),
        });
    }
    for tr in file.transitions.iter().chain(&file.shock_transitions) {
        for &(i, v) in &tr.jump {
            if v.fract() != 0.0 {
                return Err(Error::Invalid(format!(
                    "transition `{}` of {} (line {}) moves `{}` by {v}: the stochastic twin needs whole jumps",
                    tr.name, file.source, tr.line, file.states[i].name
                )));
            }
        }
    }
    let rows = (sc.t_end / opts.dt).floor() as usize + 1;
    if rows as f64 * opts.runs as f64 > crate::simulate::MAX_ROWS as f64 {
        return Err(Error::OutOfRange {
            name: "dt".into(),
            value: opts.dt,
            range: format!(
                "large enough that runs × grid rows stay at most {} (now {} × {rows})",
                crate::simulate::MAX_ROWS,
                opts.runs
            ),
        });
    }
    let tau = match opts.method {
        StochasticMethod::Exact => false,
        StochasticMethod::TauLeap => true,
        StochasticMethod::Auto => opts.population >= 1e5,
    };
    // Times at which the parameters or the wave change.
    let mut breaks: Vec<f64> = sc.interventions.iter().map(|iv| iv.at).collect();
    if let Some(sh) = &sc.shock {
        breaks.push(sh.at);
        breaks.push(sh.at + sh.window);
    }
    breaks.push(sc.t_end);
    breaks.retain(|b| *b > 0.0 && *b <= sc.t_end);
    breaks.sort_by(f64::total_cmp);
    breaks.dedup();
    (0..opts.runs)
        .map(|run| {
            let mut chain = Chain::<N> {
                file,
                m: opts.population,
                tau,
                epsilon: opts.epsilon,
                rng: Xoshiro256PlusPlus::seed_from_u64(crate::qmc::hash3(
                    opts.seed, run as u64, 0x5eed,
                )),
                counts: x0.iter().map(|v| (v * opts.population).round()).collect(),
                events: 0,
                leaps: 0,
            };
            let mut grid: Vec<Vec<f64>> = Vec::with_capacity(rows);
            let m = opts.population;
            let mut record = |t: f64, c: &[f64]| {
                // Grid times up to `t` hold the counts as they were before `t`.
                while grid.len() < rows && (grid.len() as f64) * opts.dt < t {
                    grid.push(c.iter().map(|v| v / m).collect());
                }
            };
            // An instantaneous wave at `t`: the shock transitions' chain for unit time.
            let wave = |chain: &mut Chain<N>, t: f64| -> Result<(), Error> {
                if let Some(s) = sc.shock.filter(|s| !s.is_spread() && s.at == t) {
                    file.check_shock()?;
                    let h = [-(1.0 - s.fraction).ln(), -(1.0 - s.sn_fraction).ln()];
                    let p = sc.params_at(t);
                    let mut none = |_: f64, _: &[f64]| {};
                    // Leaps follow the propensities at their start (first order): through a
                    // wave's map, where the counts change by half in unit time, that biased
                    // peers by −0.5 % after a 0.3 wave at ε = 0.03; a tenth of ε there.
                    let eps = chain.epsilon;
                    chain.epsilon = eps / 10.0;
                    let done = chain.advance(&[1], (0.0, 1.0), &p, &h, &mut none);
                    chain.epsilon = eps;
                    done?;
                }
                Ok(())
            };
            let mut t = 0.0;
            wave(&mut chain, 0.0)?;
            for &b in &breaks {
                let p = sc.params_at(t);
                let spread = sc
                    .shock
                    .filter(|s| s.is_spread() && s.at <= t && t < s.at + s.window);
                if let Some(s) = spread {
                    let h = [
                        -(1.0 - s.fraction).ln() / s.window,
                        -(1.0 - s.sn_fraction).ln() / s.window,
                    ];
                    chain.advance(&[0, 1], (t, b), &p, &h, &mut record)?;
                } else {
                    chain.advance(&[0], (t, b), &p, &[0.0, 0.0], &mut record)?;
                }
                // Grid times before `b` hold the counts reached by then.
                record(b, &chain.counts.clone());
                t = b;
                wave(&mut chain, t)?;
            }
            let last: Vec<f64> = chain.counts.iter().map(|v| v / m).collect();
            while grid.len() < rows {
                grid.push(last.clone());
            }
            Ok(ChainRun {
                run,
                grid,
                events: chain.events,
                leaps: chain.leaps,
            })
        })
        .collect()
}
