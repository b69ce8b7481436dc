//! Tipping maps: the critical shock over a grid of two parameters, followed from cell to cell.
//!
//! A map is a set of **lines**: the first parameter fixed, the second increasing. The first
//! cell of a line gets the full analysis of [`critical_shock`] (every equilibrium, the scan of
//! shocks, the refinement of every change of fate). Each further cell **continues** from the
//! cell before it:
//!
//! - its healthy state is found by Newton from the neighbour's ([`healthy_from`]: a stable
//!   root that serves at least the healthy level), provided the line's last full search found
//!   exactly one healthy state; otherwise, or when Newton fails (a fold was crossed), the cell
//!   gets the full analysis;
//! - its critical shock is bracketed around the value predicted from the two cells before it
//!   (linear extrapolation), the bracket as wide as the tolerance or twice the last
//!   prediction's miss; the two ends are simulated, the bracket is widened by doubling steps
//!   until its lower end recovers and its upper end collapses, and then bisected to the
//!   tolerance — every end a simulated trial, as in [`critical_shock`];
//! - when the bracket cannot be placed (the ends' fates come in the wrong order, a widening
//!   reaches 0 or 1, a trial does not settle) or the neighbour had no critical shock (no shock
//!   tips it), the cell runs the whole scan on its continued healthy state.
//!
//! A cell's value is therefore always certified by two simulated trials no further apart than
//! the tolerance. What continuation does not re-check is that no *smaller* shock tips the
//! network: the full scan does that at the first cell of each line (and wherever continuation
//! fails); along a line, the change of fate followed is the one the scan found. A second
//! healthy state appearing along a line (a fold between two cells creating one) is not seen.
//!
//! Each line is computed in order by one thread, so the map is the same whatever the number
//! of threads.

use crate::analysis::tipping::{
    critical_shock, critical_shock_on, fate, refine, Fate, Landscape, TippingOptions, MAX_FRACTION,
};
use crate::equilibria::{healthy_count, healthy_from, Rest};
use crate::error::Error;
use crate::model::{Model, System};
use crate::output::num;
use crate::scenario::Quantity;
use crate::simulate::Outcome;
use crate::solve::SolverStats;
use crate::sweep::Axis;
use nalgebra::{Const, DimMin, SVector};
use rayon::prelude::*;

/// Newton iterations a continued healthy state may take before the cell runs the full search.
pub const CONTINUE_MAX_ITER: usize = 12;

/// Doublings of the bracket a continued cell may try before it runs the whole scan.
pub const MAX_WIDENINGS: usize = 24;

/// One axis of a map: a model parameter and its values, in increasing or decreasing order.
#[derive(Debug, Clone, PartialEq)]
pub struct MapAxis {
    /// Index of the parameter in the model's table.
    pub param: usize,
    /// The values, one per row (or column) of the map.
    pub values: Vec<f64>,
}

impl MapAxis {
    /// The axis of a map from a grid axis ([`Axis`]): it must vary a model parameter.
    pub fn from_axis(a: &Axis) -> Result<Self, Error> {
        match a.quantity {
            Quantity::Param(param) => Ok(MapAxis {
                param,
                values: (0..a.count).map(|j| a.value(j)).collect(),
            }),
            _ => Err(Error::Invalid(format!(
                "a tipping map's axes are model parameters; `{}` is not one",
                a.name
            ))),
        }
    }
}

/// What a cell of the map is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapState {
    /// The network is healthy and a shock below 1 tips it: the cell has a critical shock.
    Bistable,
    /// No healthy state: the network is down whatever the shock.
    AlwaysDown,
    /// Healthy, and no shock of the scan tips it.
    AlwaysHeals,
    /// The cell's analysis failed ([`MapCell::error`] says why).
    Error,
}

impl MapState {
    /// `bistable`, `always_down`, `always_heals` or `error`.
    pub fn name(self) -> &'static str {
        match self {
            MapState::Bistable => "bistable",
            MapState::AlwaysDown => "always_down",
            MapState::AlwaysHeals => "always_heals",
            MapState::Error => "error",
        }
    }
}

/// One cell of a tipping map.
#[derive(Debug, Clone, PartialEq)]
pub struct MapCell {
    /// Value of the first parameter.
    pub x: f64,
    /// Value of the second parameter.
    pub y: f64,
    /// What the cell is.
    pub state: MapState,
    /// f*, the middle of [`MapCell::bracket`] (only for [`MapState::Bistable`]).
    pub critical_shock: Option<f64>,
    /// `(recovers, collapses)`: the simulated shocks either side of f*, no further apart than
    /// the tolerance.
    pub bracket: Option<(f64, f64)>,
    /// Trials simulated for this cell.
    pub trials: usize,
    /// Whether the cell's healthy state was continued from its neighbour's (no full search of
    /// equilibria).
    pub continued: bool,
    /// Whether the bracket was continued from the neighbour's f* (no scan).
    pub bracket_continued: bool,
    /// Why the cell's analysis failed.
    pub error: Option<String>,
}

/// The critical shock over a grid of two parameters.
#[derive(Debug, Clone)]
pub struct ShockMap {
    /// The first parameter (one line of the map per value).
    pub x: MapAxis,
    /// The second parameter (along each line).
    pub y: MapAxis,
    /// The cells, the first parameter varying slowest: cell `(i, j)` is at `i·ny + j`.
    pub cells: Vec<MapCell>,
    /// Solver work over all trials.
    pub stats: SolverStats,
}

impl ShockMap {
    /// Cells in each state: bistable, always down, always heals, error.
    pub fn counts(&self) -> [usize; 4] {
        let mut c = [0; 4];
        for cell in &self.cells {
            c[cell.state as usize] += 1;
        }
        c
    }

    /// Cells whose healthy state was continued, and cells whose bracket was.
    pub fn continued(&self) -> (usize, usize) {
        (
            self.cells.iter().filter(|c| c.continued).count(),
            self.cells.iter().filter(|c| c.bracket_continued).count(),
        )
    }

    /// Trials over all cells.
    pub fn trials(&self) -> usize {
        self.cells.iter().map(|c| c.trials).sum()
    }

    /// The map as CSV records: the header (the two parameters as `names`, `critical_shock`,
    /// the bracket `recovers,collapses`, `state`, `trials`, `error`) and one row per cell, the
    /// first parameter varying slowest.
    pub fn csv_rows(&self, names: [&str; 2]) -> Vec<Vec<String>> {
        let opt = |v: Option<f64>| v.map_or(String::new(), num);
        let mut rows = vec![[
            names[0],
            names[1],
            "critical_shock",
            "recovers",
            "collapses",
            "state",
            "trials",
            "error",
        ]
        .map(String::from)
        .to_vec()];
        rows.extend(self.cells.iter().map(|c| {
            vec![
                num(c.x),
                num(c.y),
                opt(c.critical_shock),
                opt(c.bracket.map(|b| b.0)),
                opt(c.bracket.map(|b| b.1)),
                c.state.name().to_string(),
                c.trials.to_string(),
                c.error.clone().unwrap_or_default(),
            ]
        }));
        rows
    }
}

/// What a line carries from one cell to the next.
struct Carry<const N: usize> {
    /// The healthy state, and whether the line's last full search found exactly one.
    healthy: SVector<f64, N>,
    unique: bool,
    /// The last two critical shocks along the line (latest first) and the last prediction's
    /// miss.
    fstar: [Option<f64>; 2],
    miss: f64,
}

/// The critical shock over the grid `x × y` around the parameters `p` (the other parameters
/// keep their values), followed from cell to cell ([module docs](self)); `threads` workers
/// (0: one per core) take whole lines.
///
/// Every axis value is checked against its parameter's range first. A cell whose analysis
/// fails (e.g. a trial that does not settle) is reported as [`MapState::Error`] with the
/// reason, and the next cell of its line starts afresh.
pub fn shock_map<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    x: &MapAxis,
    y: &MapAxis,
    opts: &TippingOptions,
    threads: usize,
) -> Result<ShockMap, Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    opts.validate()?;
    model.validate(p)?;
    let specs = model.params();
    if x.param == y.param {
        return Err(Error::Invalid(format!(
            "a tipping map needs two different parameters (both axes are {})",
            specs[x.param].name
        )));
    }
    for axis in [x, y] {
        let spec = specs
            .get(axis.param)
            .ok_or_else(|| Error::Invalid(format!("no parameter {} in the model", axis.param)))?;
        if axis.values.is_empty() {
            return Err(Error::Invalid(format!(
                "the map's axis {} has no values",
                spec.name
            )));
        }
        for &v in &axis.values {
            spec.check(v)?;
        }
    }
    crate::sweep::check_threads(threads)?;
    let lines: Vec<(Vec<MapCell>, SolverStats)> = crate::sweep::pool(threads)?.install(|| {
        // One line per job: lines differ in cost several times over (one of cells that are
        // always down, each a full equilibrium search, against one of continued brackets), and
        // a worker that runs out of lines can take only a whole job from the other.
        x.values
            .par_iter()
            .with_max_len(1)
            .map(|&xv| line(model, p, (x.param, xv), y, opts))
            .collect()
    });
    let mut stats = SolverStats::default();
    let mut cells = Vec::with_capacity(x.values.len() * y.values.len());
    for (c, s) in lines {
        cells.extend(c);
        stats += s;
    }
    Ok(ShockMap {
        x: x.clone(),
        y: y.clone(),
        cells,
        stats,
    })
}

/// One line of the map: `p[kx] = xv`, the second parameter along `y`.
fn line<M: Model<N>, const N: usize>(
    model: &M,
    p: &[f64],
    (kx, xv): (usize, f64),
    y: &MapAxis,
    opts: &TippingOptions,
) -> (Vec<MapCell>, SolverStats)
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let mut q = p.to_vec();
    q[kx] = xv;
    let mut stats = SolverStats::default();
    let mut carry: Option<Carry<N>> = None;
    let mut cells = Vec::with_capacity(y.values.len());
    for &yv in &y.values {
        q[y.param] = yv;
        let (cell, next) = match cell(model, &q, carry.as_ref(), opts, &mut stats) {
            Ok((state, next)) => (state, next),
            Err(e) => (
                Cell {
                    state: MapState::Error,
                    bracket: None,
                    trials: 0,
                    continued: false,
                    bracket_continued: false,
                    error: Some(e.to_string()),
                },
                None,
            ),
        };
        carry = next;
        cells.push(MapCell {
            x: xv,
            y: yv,
            state: cell.state,
            critical_shock: cell.bracket.map(|(a, b)| 0.5 * (a + b)),
            bracket: cell.bracket,
            trials: cell.trials,
            continued: cell.continued,
            bracket_continued: cell.bracket_continued,
            error: cell.error,
        });
    }
    (cells, stats)
}

/// A cell's answer before it is placed on the grid.
struct Cell {
    state: MapState,
    bracket: Option<(f64, f64)>,
    trials: usize,
    continued: bool,
    bracket_continued: bool,
    error: Option<String>,
}

/// One cell at parameters `q`, continued from `carry` when it can be.
fn cell<M: Model<N>, const N: usize>(
    model: &M,
    q: &[f64],
    carry: Option<&Carry<N>>,
    opts: &TippingOptions,
    stats: &mut SolverStats,
) -> Result<(Cell, Option<Carry<N>>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let warm = carry
        .filter(|c| c.unique)
        .and_then(|c| healthy_from(model, q, &c.healthy, CONTINUE_MAX_ITER).map(|h| (c, h)));
    let Some((carry, (healthy, service))) = warm else {
        return full(model, q, opts, stats);
    };
    let landscape = Landscape {
        equilibria: vec![healthy],
        rest: Rest {
            index: 0,
            service,
            healthy: true,
        },
    };
    let x = landscape.rest_state();
    let mut trials = 0;
    if let Some(f1) = carry.fstar[0] {
        let guess = carry.fstar[1].map_or(f1, |f2| 2.0 * f1 - f2);
        let sys = System::new(model, q);
        let mut trial = |f: f64| -> Result<Fate, Error> {
            trials += 1;
            let x0 = model.reboot_jump(&x, q, f, f)?;
            fate(&sys, x0, &landscape, &opts.solve, stats)
        };
        let width = (0.98 * opts.tol).max(2.0 * carry.miss);
        if let Some((a, b)) = bracket_around(guess, width, opts.tol, &mut trial)? {
            let f = 0.5 * (a + b);
            return Ok((
                Cell {
                    state: MapState::Bistable,
                    bracket: Some((a, b)),
                    trials,
                    continued: true,
                    bracket_continued: true,
                    error: None,
                },
                Some(Carry {
                    healthy: x,
                    unique: true,
                    fstar: [Some(f), Some(f1)],
                    miss: (f - guess).abs(),
                }),
            ));
        }
    }
    // No bracket to continue: the whole scan on the continued healthy state.
    let cs = critical_shock_on(model, q, landscape, opts)?;
    *stats += cs.stats;
    let state = if cs.value.is_some() {
        MapState::Bistable
    } else {
        MapState::AlwaysHeals
    };
    Ok((
        Cell {
            state,
            bracket: cs.bracket,
            trials: trials + cs.trials,
            continued: true,
            bracket_continued: false,
            error: None,
        },
        Some(Carry {
            healthy: x,
            unique: true,
            fstar: [cs.value, None],
            miss: 0.0,
        }),
    ))
}

/// The full analysis of a cell: every equilibrium, the scan, the refinement.
fn full<M: Model<N>, const N: usize>(
    model: &M,
    q: &[f64],
    opts: &TippingOptions,
    stats: &mut SolverStats,
) -> Result<(Cell, Option<Carry<N>>), Error>
where
    Const<N>: DimMin<Const<N>, Output = Const<N>>,
{
    let cs = critical_shock(model, q, opts)?;
    *stats += cs.stats;
    let state = if cs.down {
        MapState::AlwaysDown
    } else if cs.value.is_some() {
        MapState::Bistable
    } else {
        MapState::AlwaysHeals
    };
    let carry = cs.landscape.healthy_state().map(|h| Carry {
        healthy: h,
        unique: healthy_count(model, q, &cs.landscape.equilibria) == 1,
        fstar: [cs.value, None],
        miss: 0.0,
    });
    Ok((
        Cell {
            state,
            bracket: cs.bracket,
            trials: cs.trials,
            continued: false,
            bracket_continued: false,
            error: None,
        },
        carry,
    ))
}

/// A bracket `(recovers, collapses)` of the change of fate near `guess`, no wider than `tol`:
/// `[guess − width/2, guess + width/2]` simulated at both ends, widened by doubling steps
/// until its ends' fates differ the right way round, then bisected. `None` when the ends come
/// the wrong way round, a widening leaves (0, 1) or a trial does not settle.
fn bracket_around(
    guess: f64,
    width: f64,
    tol: f64,
    trial: &mut impl FnMut(f64) -> Result<Fate, Error>,
) -> Result<Option<(f64, f64)>, Error> {
    let inside = |f: f64| f > 0.0 && f < MAX_FRACTION;
    let (lo, hi) = (guess - 0.5 * width, guess + 0.5 * width);
    if !(inside(lo) && inside(hi)) {
        return Ok(None);
    }
    let mut run = |f: f64| -> Result<Option<Fate>, Error> {
        let r = trial(f)?;
        Ok((r.outcome != Outcome::Undecided).then_some(r))
    };
    let (Some(flo), Some(fhi)) = (run(lo)?, run(hi)?) else {
        return Ok(None);
    };
    use Outcome::{Collapsed, Recovered};
    let (mut a, mut b) = ((lo, flo), (hi, fhi));
    // Both ends recovered: the change lies above, walk up; both collapsed: walk down. Each
    // step doubles, the end passed becomes the bracket's other end.
    let up = match (flo.outcome, fhi.outcome) {
        (Recovered, Collapsed) => None,
        (Recovered, Recovered) => Some(true),
        (Collapsed, Collapsed) => Some(false),
        _ => return Ok(None),
    };
    if let Some(up) = up {
        let mut step = width;
        let mut found = false;
        for _ in 0..MAX_WIDENINGS {
            let f = if up { b.0 + step } else { a.0 - step };
            if !inside(f) {
                return Ok(None);
            }
            let Some(r) = run(f)? else {
                return Ok(None);
            };
            if up {
                (a, b) = (b, (f, r));
            } else {
                (b, a) = (a, (f, r));
            }
            if r.outcome == if up { Collapsed } else { Recovered } {
                found = true;
                break;
            }
            step *= 2.0;
        }
        if !found {
            return Ok(None);
        }
    }
    // Bisection refuses a trial that does not settle.
    let ((ra, _), (rb, _)) = refine(a, b, tol, &|u| u, trial)?;
    Ok(Some((ra, rb)))
}
