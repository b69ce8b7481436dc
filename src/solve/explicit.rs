//! Explicit Runge–Kutta methods (Dormand–Prince 5(4) and 8(5,3)) through ode_solvers.
//!
//! ode_solvers records every accepted step (sparse output); the dense output comes from our
//! own Hermite interpolation of those steps (degree 7: values and first three derivatives at
//! both ends, the higher ones by automatic differentiation), never from the crate's output grid (which
//! can extrapolate past the point the integration reached).

use super::dense::Segment;
use super::{Method, Observer, SolveOptions, SolverStats, Span};
use crate::error::{Error, SolverFailure};
use crate::model::{Model, System};
use nalgebra::SVector;
use ode_solvers::{Dop853, Dopri5, OutputType};

struct Recorder<'s, 'a, 'o, M, const N: usize> {
    sys: &'s System<'a, M, N>,
    /// Time, and state with its first three time derivatives, at the last accepted point.
    last: (f64, [SVector<f64, N>; 4]),
    derivative_passes: usize,
    observer: &'s mut Observer<'o, N>,
    stopped: bool,
}

// Implemented on the mutable borrow: the solver owns what it is given, and the recorder's
// last point is needed after the run.
impl<M: Model<N>, const N: usize> ode_solvers::System<f64, SVector<f64, N>>
    for &mut Recorder<'_, '_, '_, M, N>
{
    fn system(&self, t: f64, y: &SVector<f64, N>, dy: &mut SVector<f64, N>) {
        *dy = self.sys.f(t, y);
    }

    fn solout(&mut self, t: f64, y: &SVector<f64, N>, dy: &SVector<f64, N>) -> bool {
        let (t0, left) = self.last;
        let (g, j) = self.sys.flow_derivatives(t, y, dy);
        self.derivative_passes += 2;
        let right = [*y, *dy, g, j];
        let seg = Segment::hermite(t0, t, left, right);
        self.last = (t, right);
        if (self.observer)(&seg) {
            self.stopped = true;
        }
        self.stopped
    }
}

/// Integrates with Dopri5 or Dop853 (`opts.method`; anything else means Dopri5) from
/// `(t0, y0)` to `t1`.
pub fn integrate<M: Model<N>, const N: usize>(
    sys: &System<'_, M, N>,
    span: Span<N>,
    opts: &SolveOptions,
    stats: &mut SolverStats,
    observer: &mut Observer<'_, N>,
) -> Result<(f64, SVector<f64, N>), Error> {
    let Span { t0, y0, t1 } = span;
    if t1 <= t0 {
        return Ok((t0, y0));
    }
    let f0 = sys.f(t0, &y0);
    let (g0, j0) = sys.flow_derivatives(t0, &y0, &f0);
    stats.rhs_evals += 3;
    let mut rec = Recorder {
        sys,
        last: (t0, [y0, f0, g0, j0]),
        derivative_passes: 0,
        observer,
        stopped: false,
    };
    let (rtol, atol) = (opts.tol.rtol, opts.tol.atol);
    let h_max = opts.h_max.unwrap_or(t1 - t0).min(t1 - t0);
    let h0 = opts.h0.unwrap_or(0.0);
    let n_max = u32::try_from(opts.max_steps).unwrap_or(u32::MAX);
    // Stiffness is tested every 1000 steps by default; "off" means never.
    let n_stiff = if opts.stiffness_detection {
        1000
    } else {
        u32::MAX
    };
    let method = opts.method;
    let name = if method == Method::Dop853 {
        "dop853"
    } else {
        "dopri5"
    };
    let result = match method {
        Method::Dop853 => {
            let mut s = Dop853::from_param(
                &mut rec,
                t0,
                t1,
                0.0,
                y0,
                rtol,
                atol,
                0.9,
                0.0,
                0.333,
                6.0,
                h_max,
                h0,
                n_max,
                n_stiff,
                OutputType::Sparse,
            );
            s.integrate()
        }
        _ => {
            let mut s = Dopri5::from_param(
                &mut rec,
                t0,
                t1,
                0.0,
                y0,
                rtol,
                atol,
                0.9,
                0.04,
                0.2,
                10.0,
                h_max,
                h0,
                n_max,
                n_stiff,
                OutputType::Sparse,
            );
            s.integrate()
        }
    };
    let (t_last, [y_last, ..]) = rec.last;
    // Each forward-mode pass for the dense output counts as an evaluation.
    stats.rhs_evals += rec.derivative_passes;
    let fail = |reason| Error::Solver {
        method: name.into(),
        t: t_last,
        state: y_last.iter().copied().collect(),
        reason,
    };
    match result {
        Ok(st) => {
            stats.rhs_evals += st.num_eval as usize;
            stats.steps += st.accepted_steps as usize;
            stats.rejected += st.rejected_steps as usize;
            if !y_last.iter().all(|v| v.is_finite()) {
                return Err(fail(SolverFailure::NonFinite));
            }
            Ok((t_last, y_last))
        }
        Err(ode_solvers::dop_shared::IntegrationError::StiffnessDetected { .. }) => {
            Err(fail(SolverFailure::Stiff))
        }
        Err(ode_solvers::dop_shared::IntegrationError::StepSizeUnderflow { .. }) => {
            Err(fail(SolverFailure::StepSizeTooSmall(0.0)))
        }
        Err(ode_solvers::dop_shared::IntegrationError::MaxNumStepReached { .. }) => {
            Err(fail(SolverFailure::TooManySteps(opts.max_steps)))
        }
    }
}
