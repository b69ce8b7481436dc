//! The critical shock by hour of day: for a scenario with daily profiles, the smallest
//! instantaneous reboot fraction (peers and supernodes alike) that tips the network when the
//! wave hits at a given clock hour — when is the worst time to ship an update, and by how much.
//!
//! Each hour is answered as the autonomous critical shock is: the network rests on its healthy
//! daily cycle; the wave hits its state at that hour; the trial is followed day by day until it
//! provably settles on a stable daily cycle ([`crate::periodic::settle_on_cycles`]); the shock
//! is scanned from 0 to 1 and the first change from recovered to not recovered is bisected to
//! a bracket whose ends were both simulated and decided.

use crate::analysis::tipping::{TippingOptions, MAX_FRACTION};
use crate::equilibria::SETTLE_HORIZON;
use crate::error::Error;
use crate::model::schedule::{Clock, DailyProfile};
use crate::model::Model;
use crate::periodic::{
    choose_rest_cycle, reanchor, rest_cycle, settle_on_cycles, Cycle, Forcing, RestCycle,
};
use crate::simulate::Outcome;
use crate::solve::SolverStats;
use nalgebra::{Const, DimMin};

/// The critical shock for a wave at one clock hour.
#[derive(Debug, Clone, PartialEq)]
pub struct HourCritical {
    /// Clock hour of the wave (UTC, in [0, 24)).
    pub hour: f64,
    /// The time of the wave in the model's unit (the first time at that hour from `t = 0`).
    pub at: f64,
    /// f* (the middle of the bracket); `None` when no shock below 1 tips the network at this
    /// hour.
    pub value: Option<f64>,
    /// `[recovers, does not recover]`, both ends simulated.
    pub bracket: Option<(f64, f64)>,
    /// Trials integrated for this hour.
    pub trials: usize,
}

/// The critical shock over the day.
#[derive(Debug, Clone)]
pub struct ByHour<const N: usize> {
    /// One row per hour asked for, in the order given.
    pub rows: Vec<HourCritical>,
    /// The healthy daily cycle (anchored at `t = 0`) the waves hit.
    pub healthy: RestCycle<N>,
    /// The network has no healthy daily cycle: it is down whatever the shock, and nothing was
    /// scanned.
    pub down: bool,
    /// Solver work over all trials and cycle searches.
    pub stats: SolverStats,
}

/// The critical shock at each clock hour of `hours` for a network whose parameters `p` follow
/// the daily profiles `daily` on `clock`.
pub fn critical_shock_by_hour<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    daily: &[DailyProfile],
    clock: Clock,
    hours: &[f64],
    opts: &TippingOptions,
) -> Result<ByHour<N>, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    if !(opts.tol.is_finite() && opts.tol > 0.0 && opts.scan >= 1) {
        return Err(Error::Invalid(format!(
            "critical shock by hour: the bracket width must be > 0 and the scan at least 1 step (got {} and {})",
            opts.tol, opts.scan
        )));
    }
    for &h in hours {
        if !(h.is_finite() && (0.0..24.0).contains(&h)) {
            return Err(Error::OutOfRange {
                name: "hour".into(),
                value: h,
                range: "in [0, 24)".into(),
            });
        }
    }
    let forcing = Forcing { p, daily, clock };
    let mut stats = SolverStats::default();
    let (healthy, cycles) = rest_cycle(model, &forcing, 0.0, &opts.solve, &mut stats)?;
    if !healthy.healthy {
        return Ok(ByHour {
            rows: vec![],
            healthy,
            down: true,
            stats,
        });
    }
    let mut rows = Vec::with_capacity(hours.len());
    for &hour in hours {
        let at = (hour - clock.hour0).rem_euclid(24.0) * clock.units_per_hour;
        let here = reanchor(model, &forcing, &cycles, at, &opts.solve, &mut stats)?;
        let rest = choose_rest_cycle(model, &forcing, &here)?;
        let home = here
            .iter()
            .position(|c| crate::equilibria::same_point(&c.x0, &rest.cycle.x0))
            .expect("the rest cycle is one of the cycles");
        let mut trials = 0;
        let mut fate = |f: f64| -> Result<Outcome, Error> {
            trials += 1;
            wave_fate(model, &forcing, at, &here, home, f, opts, &mut stats)
        };
        let mut prev = (0.0, fate(0.0)?);
        if prev.1 != Outcome::Recovered {
            return Err(Error::Invalid(format!(
                "at {hour:.2} h the unshocked state does not settle back on the healthy cycle (outcome {})",
                prev.1.name()
            )));
        }
        let mut bracket = None;
        for k in 1..=opts.scan {
            let f = (k as f64 / opts.scan as f64).min(MAX_FRACTION);
            let o = fate(f)?;
            if o == Outcome::Undecided {
                return Err(Error::Invalid(format!(
                    "at {hour:.2} h a shock of {f} did not settle within {} days: no certified answer",
                    SETTLE_HORIZON / clock.period()
                )));
            }
            if o != Outcome::Recovered {
                bracket = Some((prev.0, f));
                break;
            }
            prev = (f, o);
        }
        if let Some((mut lo, mut hi)) = bracket {
            while hi - lo > opts.tol {
                let mid = 0.5 * (lo + hi);
                // A bracket narrower than the numbers' resolution cannot shrink further.
                if mid <= lo || mid >= hi {
                    break;
                }
                match fate(mid)? {
                    Outcome::Recovered => lo = mid,
                    Outcome::Collapsed => hi = mid,
                    Outcome::Undecided => {
                        return Err(Error::Invalid(format!(
                            "at {hour:.2} h a shock of {mid} did not settle: the bracket [{lo}, {hi}] stops there"
                        )))
                    }
                }
            }
            bracket = Some((lo, hi));
        }
        rows.push(HourCritical {
            hour,
            at,
            value: bracket.map(|(lo, hi)| 0.5 * (lo + hi)),
            bracket,
            trials,
        });
    }
    Ok(ByHour {
        rows,
        healthy,
        down: false,
        stats,
    })
}

/// The fate of a wave of fraction `f` (peers and supernodes) at time `at` on the cycle
/// `cycles[home]`: recovered when it settles back on that cycle.
#[allow(clippy::too_many_arguments)]
fn wave_fate<M: Model<N>, const N: usize>(
    model: &M,
    forcing: &Forcing<'_>,
    at: f64,
    cycles: &[Cycle<N>],
    home: usize,
    f: f64,
    opts: &TippingOptions,
    stats: &mut SolverStats,
) -> Result<Outcome, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let x = model.reboot_jump(&cycles[home].x0, &forcing.at(at), f, f)?;
    let settled = settle_on_cycles(
        model,
        forcing,
        at,
        x,
        cycles,
        SETTLE_HORIZON,
        &opts.solve,
        stats,
        |_| {},
    )?;
    Ok(match settled {
        Some((j, _)) if j == home => Outcome::Recovered,
        Some(_) => Outcome::Collapsed,
        None => Outcome::Undecided,
    })
}
