//! The bistable region along one parameter, assembled from a continuation: where the healthy
//! state (the stable state that serves best, at least 1/2) coexists with another stable state
//! that serves less (a collapsed state: a trigger that moves the network there is a lasting
//! outage, even where that state still serves more than half).
//!
//! Each branch is cut into stretches of stable equilibria; a stretch ends at a located special
//! point (a fold where it meets a saddle, a Hopf point where it loses stability), at the end of
//! the continued range, or — when a change of stability was not located — at the last stable
//! point, marked as such. Folds and Hopf points on branches that are already unstable end no
//! stretch and so bound nothing. The bistable intervals are the overlaps of a healthy stretch
//! with a stretch that serves less.
//!
//! These are the parameters at which two stable *equilibria* coexist. Where the collapsed
//! stretch ends at a **supercritical** Hopf point, a small stable cycle takes over from
//! the collapsed equilibrium beyond it and the network stays down (oscillating); the edge says
//! so through its criticality. Where it ends at a **subcritical** one, an unstable cycle has
//! shrunk onto the collapsed state and beyond it nothing holds the network down.

use crate::analysis::continuation::{Continuation, SpecialPoint};
use crate::analysis::hopf::Criticality;
use crate::error::Error;
use crate::model::Model;
use serde::Serialize;

/// What ends a stretch of stable equilibria.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// A fold: the stable branch meets a saddle and ends.
    Fold,
    /// A Hopf point: the branch loses stability.
    Hopf,
    /// The end of the continued range: the stretch may go on beyond it.
    RangeEnd,
    /// Stability changed between two steps without a located special point; the value is the
    /// last stable step.
    Unlocated,
    /// The branch stopped before the end of the range (lost, or out of steps: see
    /// [`crate::analysis::continuation::BranchEnd`]); the stretch may go on beyond it.
    BranchStopped,
}

impl EdgeKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Fold => "fold",
            EdgeKind::Hopf => "hopf",
            EdgeKind::RangeEnd => "range end",
            EdgeKind::Unlocated => "unlocated",
            EdgeKind::BranchStopped => "branch stopped",
        }
    }
}

/// One end of a stretch or interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Edge {
    /// Parameter value.
    pub mu: f64,
    /// What happens there.
    pub kind: EdgeKind,
    /// At a Hopf point, its criticality (from the first Lyapunov coefficient).
    pub criticality: Option<Criticality>,
}

impl Edge {
    /// `fold`, `hopf, subcritical`, `range end`, ….
    pub fn describe(&self) -> String {
        match self.criticality {
            Some(c) => format!("{}, {}", self.kind.name(), c.name()),
            None => self.kind.name().to_string(),
        }
    }
}

/// A maximal run of stable equilibria along one branch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StableStretch {
    /// Index of the branch in the continuation.
    pub branch: usize,
    /// Lower end (in the parameter).
    pub lo: Edge,
    /// Upper end.
    pub hi: Edge,
    /// Service level at the stretch's middle step.
    pub service: f64,
    /// The service level a healthy state has at least ([`Model::healthy_level`]).
    pub healthy_above: f64,
}

impl StableStretch {
    /// Whether the stretch serves at least its model's healthy level.
    pub fn healthy(&self) -> bool {
        self.service >= self.healthy_above
    }
}

/// An interval of the parameter in which the network is bistable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BistableInterval {
    /// Lower end: where the later of the two stretches begins.
    pub lo: Edge,
    /// Upper end: where the earlier of the two stretches ends.
    pub hi: Edge,
}

/// The stretches of stable equilibria of every branch of `c`.
pub fn stable_stretches<M: Model<N>, const N: usize>(
    model: &M,
    c: &Continuation<N>,
) -> Result<Vec<StableStretch>, Error> {
    let mut out = vec![];
    for (b, br) in c.branches.iter().enumerate() {
        let pts = &br.points;
        let mut i = 0;
        while i < pts.len() {
            if !(pts[i].stable && pts[i].special.is_none()) {
                i += 1;
                continue;
            }
            let start = i;
            while i < pts.len() && pts[i].stable && pts[i].special.is_none() {
                i += 1;
            }
            let end = i - 1;
            let edge = |k: Option<usize>, own: usize| match k.map(|k| (k, pts[k].special)) {
                Some((k, Some(SpecialPoint::Fold))) => Edge {
                    mu: pts[k].mu,
                    kind: EdgeKind::Fold,
                    criticality: None,
                },
                Some((k, Some(SpecialPoint::Hopf))) => Edge {
                    mu: pts[k].mu,
                    kind: EdgeKind::Hopf,
                    criticality: pts[k].hopf.map(|h| h.criticality),
                },
                Some(_) => Edge {
                    mu: pts[own].mu,
                    kind: EdgeKind::Unlocated,
                    criticality: None,
                },
                // The branch's first point is at the start value, an end of the range; its last
                // is one too only if the branch was followed that far.
                None if own == 0 || br.end.complete() => Edge {
                    mu: pts[own].mu,
                    kind: EdgeKind::RangeEnd,
                    criticality: None,
                },
                None => Edge {
                    mu: pts[own].mu,
                    kind: EdgeKind::BranchStopped,
                    criticality: None,
                },
            };
            let before = edge(start.checked_sub(1), start);
            let after = edge((end + 1 < pts.len()).then_some(end + 1), end);
            let mid = &pts[(start + end) / 2];
            let service = model.service_level(&mid.x, &c.params_at(mid.mu)).ok_or_else(|| {
                Error::Unsupported(format!(
                    "model `{}` defines no service level, so no stretch can be called healthy (implement Model::service_level)",
                    model.name()
                ))
            })?;
            let (lo, hi) = if before.mu <= after.mu {
                (before, after)
            } else {
                (after, before)
            };
            out.push(StableStretch {
                branch: b,
                lo,
                hi,
                service,
                healthy_above: model.healthy_level(),
            });
        }
    }
    Ok(out)
}

/// The bistable intervals along the continued parameter: every overlap of a healthy stretch of
/// stable equilibria with one that serves less, in increasing order.
///
/// ```
/// use selfheal::analysis::bistable::{bistable_intervals, EdgeKind};
/// use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions};
/// use selfheal::model::{Model, ParamSet, P2p};
/// let ps = ParamSet::defaults(P2p.params());
/// let k = ps.index("sn_capacity").unwrap();
/// let c = continue_equilibria(&P2p, ps.values(), k, 300.0, 20000.0, &ContinuationOptions::default()).unwrap();
/// let b = bistable_intervals(&P2p, &c).unwrap();
/// assert_eq!(b.len(), 1);
/// // The healthy state's fold below, the collapsed state's (subcritical) Hopf point above.
/// assert_eq!((b[0].lo.kind, b[0].hi.kind), (EdgeKind::Fold, EdgeKind::Hopf));
/// assert_eq!(b[0].hi.describe(), "hopf, subcritical");
/// assert!((b[0].lo.mu - 530.898).abs() < 0.01 && (b[0].hi.mu - 5784.245).abs() < 0.01);
/// ```
pub fn bistable_intervals<M: Model<N>, const N: usize>(
    model: &M,
    c: &Continuation<N>,
) -> Result<Vec<BistableInterval>, Error> {
    let stretches = stable_stretches(model, c)?;
    let mut out = vec![];
    // The healthy state is the stable state that serves best (at least 1/2); any other
    // stable state beside it is a lasting outage, even one that serves more than half.
    for h in stretches.iter().filter(|s| s.healthy()) {
        for d in stretches.iter().filter(|d| d.service < h.service) {
            let lo = if h.lo.mu >= d.lo.mu { h.lo } else { d.lo };
            let hi = if h.hi.mu <= d.hi.mu { h.hi } else { d.hi };
            if lo.mu < hi.mu {
                out.push(BistableInterval { lo, hi });
            }
        }
    }
    out.sort_by(|a, b| a.lo.mu.total_cmp(&b.lo.mu));
    Ok(out)
}
