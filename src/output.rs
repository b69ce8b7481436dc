//! CSV formats of results: trajectories, equilibria, continuation branches, fold and Hopf
//! curves. Each writes to any `Write`; files go through [`crate::files::write_atomic`].

use crate::error::Error;
use crate::model::Model;
use crate::scenario::Scenario;
use crate::simulate::Simulation;
use std::fmt;
use std::io::Write;

/// A number as every output of the crate writes it: the shortest decimal that reads back to
/// the same `f64`, plain for magnitudes in `[1e-7, 1e21)` (and 0), with an exponent outside
/// (`1e-310`, `4.7e161`) so that a subnormal or huge value is not hundreds of digits.
///
/// ```
/// use selfheal::output::Num;
/// assert_eq!(Num(0.25).to_string(), "0.25");
/// assert_eq!(Num(1e-310).to_string(), "1e-310");
/// assert_eq!(Num(-4.5e161).to_string(), "-4.5e161");
/// for v in [3.339619449542576e-8, 1e-7, 123456.75, 1e21, f64::MIN_POSITIVE] {
///     assert_eq!(Num(v).to_string().parse::<f64>().unwrap(), v);
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0.abs();
        if a == 0.0 || !a.is_finite() || (1e-7..1e21).contains(&a) {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:e}", self.0)
        }
    }
}

/// `v` with `digits` significant digits, without trailing zeros (how messages and the report
/// quote numbers).
///
/// ```
/// use selfheal::output::significant;
/// assert_eq!(significant(0.123456, 3), "0.123");
/// assert_eq!(significant(24e6, 3), "24000000");
/// assert_eq!(significant(2.5, 6), "2.5");
/// ```
pub fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let prec = (digits - 1 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.prec$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// [`Num`] as a string.
pub fn num(v: f64) -> String {
    Num(v).to_string()
}

/// Writes a sampled trajectory as CSV: `t`, the states, then the model's extra columns
/// (`t,peers,supernodes,queue,offline,utilisation` for the reference model). With `absolute`,
/// populations are user counts instead of fractions.
pub fn trajectory_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    scenario: &Scenario,
    sim: &Simulation<N>,
    dt: f64,
    absolute: bool,
) -> Result<(), Error> {
    let mut w = csv::Writer::from_writer(out);
    let csv_err = csv_error;
    let extras = model.extra_columns();
    let mut header = vec!["t".to_string()];
    header.extend(model.states().iter().map(|s| s.name.to_string()));
    header.extend(extras.iter().map(|(n, _)| n.to_string()));
    w.write_record(&header).map_err(csv_err)?;
    let scale = if absolute { scenario.population } else { 1.0 };
    let mut row: Vec<String> = Vec::with_capacity(header.len());
    for (t, x) in sim.sample(model, dt) {
        row.clear();
        row.push(num(t));
        row.extend(x.iter().map(|v| num(v * scale)));
        let p = scenario.params_at(t);
        for ((_, is_pop), v) in extras.iter().zip(model.extra_values(&x, &p)) {
            // A value the state does not define (utilisation without any capacity) is an empty
            // cell, which CSV readers take as missing, never `inf`.
            if v.is_finite() {
                row.push(num(if *is_pop { v * scale } else { v }));
            } else {
                row.push(String::new());
            }
        }
        w.write_record(&row).map_err(csv_err)?;
    }
    w.flush().map_err(|e| Error::write("CSV output", e))?;
    Ok(())
}

fn csv_error(e: csv::Error) -> Error {
    Error::csv_write("CSV output", e)
}

/// Writes equilibria as CSV: the states, then
/// `stable,max_real_eig,kind,unstable_dims,residual,eigenvalues,service_level` (the last empty
/// when the model defines no service level).
pub fn equilibria_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    p: &[f64],
    eq: &[crate::analysis::Equilibrium<N>],
) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    let mut header: Vec<String> = model.states().iter().map(|s| s.name.to_string()).collect();
    header.extend(
        [
            "stable",
            "max_real_eig",
            "kind",
            "unstable_dims",
            "residual",
            "eigenvalues",
            "service_level",
        ]
        .map(String::from),
    );
    csv.write_record(&header).map_err(csv_error)?;
    for e in eq {
        let eigs: Vec<String> = e
            .stability
            .eigenvalues
            .iter()
            .map(|l| {
                if l.im == 0.0 {
                    format!("{:e}", l.re)
                } else {
                    format!("{:e}{:+e}i", l.re, l.im)
                }
            })
            .collect();
        let mut row: Vec<String> = e.x.iter().map(|v| num(*v)).collect();
        row.extend([
            format!("{}", e.kind == crate::analysis::Kind::Stable),
            format!("{:e}", e.stability.max_real),
            e.describe(),
            format!("{}", e.stability.unstable_dims),
            format!("{:e}", e.residual),
            eigs.join(" "),
            model.service_level(&e.x, p).map_or(String::new(), num),
        ]);
        csv.write_record(&row).map_err(csv_error)?;
    }
    csv.flush().map_err(|e| Error::write("CSV output", e))
}

/// Writes a continuation as CSV: the parameter, the states, then
/// `stable,point,branch,max_real_eig,omega,l1`; one row per accepted step of every branch,
/// `point` set (`fold`, `hopf`) on located special points, `omega` (the critical pair's
/// imaginary part) and `l1` (the first Lyapunov coefficient) on Hopf points only.
pub fn continuation_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    c: &crate::analysis::continuation::Continuation<N>,
) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    let mut header = vec![c.param.clone()];
    header.extend(model.states().iter().map(|s| s.name.to_string()));
    header.extend(["stable", "point", "branch", "max_real_eig", "omega", "l1"].map(String::from));
    csv.write_record(&header).map_err(csv_error)?;
    for (b, br) in c.branches.iter().enumerate() {
        for pt in &br.points {
            let mut row = vec![num(pt.mu)];
            row.extend(pt.x.iter().map(|v| num(*v)));
            row.extend([
                format!("{}", pt.stable),
                pt.special.map_or(String::new(), |s| s.name().to_string()),
                format!("{}", b + 1),
                format!("{:e}", pt.max_real),
                pt.hopf.map_or(String::new(), |h| num(h.omega)),
                pt.hopf.map_or(String::new(), |h| format!("{:e}", h.l1)),
            ]);
            csv.write_record(&row).map_err(csv_error)?;
        }
    }
    csv.flush().map_err(|e| Error::write("CSV output", e))
}

/// Writes fold curves as CSV: the two parameters, the states, then `point,curve`; one row per
/// step of every curve, `point` set on located codimension-two points (`cusp`, `bt`, `zh`).
pub fn fold_curve_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    fc: &crate::analysis::codim2::FoldCurves<N>,
) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    let mut header = vec![fc.p1.clone(), fc.p2.clone()];
    header.extend(model.states().iter().map(|s| s.name.to_string()));
    header.extend(["point", "curve"].map(String::from));
    csv.write_record(&header).map_err(csv_error)?;
    for (c, curve) in fc.curves.iter().enumerate() {
        for pt in &curve.points {
            let mut row = vec![num(pt.mu1), num(pt.mu2)];
            row.extend(pt.x.iter().map(|v| num(*v)));
            row.push(pt.special.map_or(String::new(), |s| s.name().to_string()));
            row.push(format!("{}", c + 1));
            csv.write_record(&row).map_err(csv_error)?;
        }
    }
    csv.flush().map_err(|e| Error::write("CSV output", e))
}

/// Writes Hopf curves in two parameters as CSV: the two parameters, the states, then
/// `omega,l1,point,curve`; one row per point of every curve, in order along it, `point` set
/// (`bautin`, `bt`) on located codimension-two points, `l1` empty where it is not defined (at a
/// Bogdanov–Takens point).
pub fn hopf_curve_csv<M: Model<N>, const N: usize>(
    out: &mut dyn Write,
    model: &M,
    hc: &crate::analysis::hopf_curve::HopfCurves<N>,
) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    let mut header = vec![hc.p1.clone(), hc.p2.clone()];
    header.extend(model.states().iter().map(|s| s.name.to_string()));
    header.extend(["omega", "l1", "point", "curve"].map(String::from));
    csv.write_record(&header).map_err(csv_error)?;
    for (c, curve) in hc.curves.iter().enumerate() {
        for pt in &curve.points {
            let mut row = vec![num(pt.mu1), num(pt.mu2)];
            row.extend(pt.x.iter().map(|v| num(*v)));
            row.extend([
                num(pt.omega),
                pt.l1.map_or(String::new(), |l| format!("{l:e}")),
                pt.kind.map_or(String::new(), |k| k.name().to_string()),
                format!("{}", c + 1),
            ]);
            csv.write_record(&row).map_err(csv_error)?;
        }
    }
    csv.flush().map_err(|e| Error::write("CSV output", e))
}
