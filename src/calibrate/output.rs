//! What a calibration writes: the residual CSV, the fitted scenario with its provenance, the
//! one-line fit quality, and the selection of readings by clock time.

use super::data::{parse_utc, Reading};
use super::{Fit, Residual};
use crate::error::Error;
use crate::model::Model;
use crate::output::num;

impl Fit {
    /// RMSE, χ² and χ²/(n − k) of the fit, in one line.
    pub fn quality(&self) -> String {
        format!(
            "RMSE {:.0} users; chi2 {:.4}; chi2/(n-k) {}",
            self.rmse,
            self.chi2,
            self.reduced_chi2.map_or("-".into(), |v| format!("{v:.4}"))
        )
    }
}

/// Where a fit came from, written as comments above the fitted scenario.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// The scenario that was fitted (as the user named it).
    pub scenario: String,
    /// The readings file.
    pub data: String,
    /// Readings used only from this clock time, as given.
    pub from: Option<String>,
    /// Readings used only until this clock time, as given.
    pub until: Option<String>,
    /// The relative error added to every reading without a `sigma`.
    pub rel_error: f64,
}

/// The readings with clock times (ISO 8601, UTC) between `from` and `until` inclusive, each
/// optional; `start` is the clock time of the scenario's `t = 0`, and the model's clock has
/// `seconds_per_unit` seconds per unit (60 for a model in minutes).
pub fn readings_between(
    readings: &[Reading],
    start: &str,
    from: Option<&str>,
    until: Option<&str>,
    seconds_per_unit: f64,
) -> Result<Vec<Reading>, Error> {
    let t0 = parse_utc(start)?;
    let minutes = |what: &str, v: Option<&str>| -> Result<Option<f64>, Error> {
        v.map(|s| {
            parse_utc(s)
                .map(|t| (t - t0) / seconds_per_unit)
                .map_err(|e| e.context(what))
        })
        .transpose()
    };
    let (from, until) = (minutes("from", from)?, minutes("until", until)?);
    Ok(readings
        .iter()
        .filter(|r| from.is_none_or(|f| r.t >= f) && until.is_none_or(|u| r.t <= u))
        .cloned()
        .collect())
}

/// Writes each reading against the fitted model: `time,t,observed,model,sigma,z`.
pub fn residuals_csv(out: &mut dyn std::io::Write, fit: &Fit) -> Result<(), Error> {
    residual_rows_csv(out, &fit.residuals)
}

/// Writes readings against a model: `time,t,observed,model,sigma,z` (what `calibrate
/// --residuals` and `simulate --data … --residuals` write).
pub fn residual_rows_csv(out: &mut dyn std::io::Write, rows: &[Residual]) -> Result<(), Error> {
    let err = |e| Error::csv_write("CSV output", e);
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["time", "t", "observed", "model", "sigma", "z"])
        .map_err(err)?;
    for r in rows {
        csv.write_record([
            r.time.clone(),
            num(r.t),
            num(r.observed),
            num(r.model),
            num(r.sigma),
            num(r.z),
        ])
        .map_err(err)?;
    }
    csv.flush().map_err(|e| Error::write("CSV output", e))
}

/// The fitted scenario as TOML (readable by [`crate::scenario::Scenario::from_toml`]), headed
/// by comments: what was fitted to which readings, the weighting, each fitted value with its
/// uncertainty, the fit quality and every warning.
pub fn fitted_toml<M: Model<N>, const N: usize>(model: &M, fit: &Fit, from: &Provenance) -> String {
    let pct = super::profile::level_percent(fit.level);
    let mut text = format!(
        "# Fitted by `selfheal calibrate` (selfheal {}) from {} to {} readings of {}{}{}.\n",
        env!("CARGO_PKG_VERSION"),
        from.scenario,
        fit.n_readings,
        from.data,
        from.from
            .as_ref()
            .map_or(String::new(), |f| format!(" from {f}")),
        from.until
            .as_ref()
            .map_or(String::new(), |u| format!(" until {u}")),
    );
    text += &format!(
        "# Weighting: sigma = sqrt((last place/sqrt(12))^2 + ({} x count)^2) unless the file gives sigma.\n",
        from.rel_error
    );
    for p in &fit.params {
        text += &format!(
            "# {} = {} (start {}; sd {}; {pct} % interval {}){}\n",
            p.name,
            p.value,
            p.start,
            p.sd.map_or("-".into(), |v| format!("{v:.3e}")),
            p.interval.map_or("not determined".into(), |(a, b)| format!(
                "{a:.4e} to {b:.4e}"
            )),
            if p.at_bound { ", at a bound" } else { "" }
        );
        if let Some(q) = &p.profile {
            text += &format!(
                "#   profile-likelihood {pct} % interval {}\n",
                q.interval_text(" to ")
            );
        }
    }
    text += &format!("# {}.\n", fit.quality());
    for w in &fit.warnings {
        text += &format!("# Warning: {w}\n");
    }
    let mut fitted = fit.scenario.clone();
    fitted.name = format!("{} (fitted)", fitted.name);
    text += &fitted.to_toml(model);
    text
}
