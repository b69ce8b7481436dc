#!/usr/bin/env python3
"""Peer comparison: the 48-hour default scenario after an instantaneous 0.5 reboot wave, solved
by selfheal (Rust) and by SciPy's solve_ivp (LSODA, RK45, Radau) on the same equations, and a
parameter sweep done the way a SciPy user would, in one run; and the same scenario by the Rust
crate diffsol's BDF (benches/diffsol_peer, a separate cargo project on selfheal's equations).

Prints, per method and tolerance: the median time per solve, right-hand-side evaluations, and the
error against a tight reference (the largest relative error over the hourly states of peers,
supernodes and queue), because equal tolerance is not equal accuracy.

The sweep: rows of sn_capacity from 600 to 5000, each with new parameters: its healthy state,
then 48 hours after an instantaneous 0.1 wave, and the minimum of the peers. selfheal's sweep
(one thread; Newton from the block's first row, the full equilibrium search there) against
SciPy's fsolve for the healthy state (started from the previous row's, as a SciPy user would)
and LSODA at rtol 1e-6 with output every minute; every 5th of the 2000 rows. The time per row of
each, and how far apart their minima are.

    pip install numpy scipy
    python3 benches/scipy_compare.py [--repeats 7]

The reference is SciPy's Radau at rtol 1e-13 (a method this crate does not use); it is checked
against selfheal's Rosenbrock at rtol 1e-12 and the script reports how far apart the two are.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
from scipy.integrate import solve_ivp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def hill_ratio(num, den, n):
    """(r^n/(1+r^n), 1/(1+r^n)) for r = num/den, evaluated on the safe side of 1."""
    if den <= 0.0:
        return 1.0, 0.0
    if num <= den:
        t = (num / den) ** n
        return t / (1.0 + t), 1.0 / (1.0 + t)
    t = (den / num) ** n
    return 1.0 / (1.0 + t), t / (1.0 + t)


def make_rhs(p):
    lam, dlt, dls = p["sign_on"], p["sign_off"], p["sn_sign_off"]
    r, th, a, kap, s0 = p["retry"], p["give_up"], p["peer_load"], p["sn_capacity"], p["dedicated"]
    m, phi0, rhoc, nn = p["success_steepness"], p["overload_rate"], p["overload_threshold"], p["overload_steepness"]
    gam, elig, sig, k = p["promotion"], p["eligible"], p["sn_ratio"], p["need_steepness"]

    def rhs(_t, x):
        n, s, q = x
        off = 1.0 - n - s - q
        load = a * n + r * q
        tot = s + s0
        cap = kap * tot
        _, succ = hill_ratio(load, cap, m)
        over, _ = hill_ratio(load, cap * rhoc, nn)
        phi = phi0 * over
        g = r * q * succ
        d = phi * s * n / tot if tot > 0 else 0.0
        _, need = hill_ratio(s, sig * n, k)
        pr = gam * elig * n * need
        return [g - dlt * n - d - pr, pr - dls * s - phi * s, lam * off + d + phi * s - g - th * q]

    return rhs


def scipy_solve(rhs, x0, method, rtol, atol):
    t_eval = np.arange(0.0, 2880.0 + 1e-9, 60.0)
    return solve_ivp(rhs, (0.0, 2880.0), x0, method=method, rtol=rtol, atol=atol, t_eval=t_eval)


def max_rel_error(states, ref):
    worst = 0.0
    for x, y in zip(states, ref):
        for a, b in zip(x, y):
            worst = max(worst, abs(a - b) / max(abs(b), 1e-300))
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15, help="SciPy solves per configuration (median)")
    ap.add_argument("--no-diffsol", action="store_true",
                    help="skip the Rust peer (diffsol's BDF, benches/diffsol_peer; its first build takes minutes)")
    args = ap.parse_args()

    out = subprocess.run(
        ["cargo", "run", "--release", "--quiet", "--example", "peer_timing"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    rust = json.loads(out)
    p, x0 = rust["params"], rust["x0"]
    rhs = make_rhs(p)

    ref = scipy_solve(rhs, x0, "Radau", 1e-13, 1e-16)
    if not ref.success:
        sys.exit(f"reference solve failed: {ref.message}")
    ref_states = ref.y.T.tolist()
    tight = [r for r in rust["runs"] if r["method"] == "rosenbrock" and r["rtol"] == 1e-12]
    if tight:
        print(f"reference (Radau, rtol 1e-13) vs selfheal rosenbrock at rtol 1e-12: "
              f"max relative difference {max_rel_error(tight[0]['hourly'], ref_states):.2e}")

    rows = []
    ours_all = [(r["rtol"], r["median_seconds"], max_rel_error(r["hourly"], ref_states))
                for r in rust["runs"] if r["method"] == "rosenbrock"]
    for r in rust["runs"]:
        if r["rtol"] in (1e-6, 1e-8) or (r["method"] == "rosenbrock" and r["rtol"] > 1e-6):
            rows.append(("selfheal " + r["method"], r["rtol"], r["median_seconds"], r["rhs_evals"],
                         r["jacobians"], max_rel_error(r["hourly"], ref_states)))
    for method in ("LSODA", "RK45", "Radau"):
        for rtol in (1e-6, 1e-8):
            times, sol = [], None
            for _ in range(args.repeats):
                t = time.perf_counter()
                sol = scipy_solve(rhs, x0, method, rtol, 1e-12)
                times.append(time.perf_counter() - t)
            times.sort()
            err = max_rel_error(sol.y.T.tolist(), ref_states) if sol.success else math.nan
            rows.append(("scipy " + method, rtol, times[len(times) // 2], sol.nfev, sol.njev, err))

    # Jacobians: ours are one forward-mode pass each (which also yields f at that point);
    # SciPy's are finite-difference Jacobians, whose evaluations of f count in `rhs evals`.
    print(f"{'solver':<22} {'rtol':>6} {'time/solve':>12} {'rhs evals':>10} {'jacobians':>10} {'max rel error':>14}")
    for name, rtol, sec, nfev, njev, err in rows:
        print(f"{name:<22} {rtol:>6.0e} {sec * 1e3:>9.3f} ms {nfev:>10} {njev:>10} {err:>14.2e}")

    def find(name, rtol):
        return next(r for r in rows if r[0] == name and r[1] == rtol)

    if not args.no_diffsol:
        diffsol_peer(ref_states, ours_all)

    for rtol in (1e-6, 1e-8):
        ours, lsoda = find("selfheal rosenbrock", rtol), find("scipy LSODA", rtol)
        print(f"rtol {rtol:.0e}: scipy LSODA / selfheal rosenbrock time per solve = {lsoda[2] / ours[2]:.0f}x "
              f"(errors {lsoda[5]:.1e} vs {ours[5]:.1e})")
    # Equal tolerance is not equal accuracy: for each LSODA run, our fastest Rosenbrock run
    # whose error is no larger.
    for rtol in (1e-6, 1e-8):
        lsoda = find("scipy LSODA", rtol)
        good = [o for o in ours_all if o[2] <= lsoda[5]]
        if good:
            o = min(good, key=lambda o: o[1])
            print(f"same or better accuracy: scipy LSODA at rtol {rtol:.0e} (error {lsoda[5]:.1e}) / "
                  f"selfheal rosenbrock at rtol {o[0]:.0e} (error {o[2]:.1e}) = {lsoda[2] / o[1]:.0f}x")

    sweep_row(rust["sweep"], p)


def diffsol_peer(ref_states, ours_all):
    """The Rust peer: diffsol's BDF on selfheal's right-hand side and exact Jacobian, the same
    scenario and hourly states, against our fastest Rosenbrock run at least as accurate."""
    out = subprocess.run(
        ["cargo", "run", "--release", "--quiet", "--manifest-path",
         os.path.join(HERE, "diffsol_peer", "Cargo.toml")],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    print(f"{'diffsol bdf':<22} {'rtol':>6} {'time/solve':>12} {'rhs evals':>10} {'J·v':>10} {'max rel error':>14}"
          f"  selfheal at equal or better accuracy")
    for r in json.loads(out)["runs"]:
        err = max_rel_error(r["hourly"], ref_states)
        good = [o for o in ours_all if o[2] <= err]
        versus = ""
        if good:
            o = min(good, key=lambda o: o[1])
            versus = (f"  rosenbrock rtol {o[0]:.0e} (error {o[2]:.1e}): "
                      f"{r['median_seconds'] / o[1]:.1f}x faster")
        print(f"{'':<22} {r['rtol']:>6.0e} {r['median_seconds'] * 1e3:>9.3f} ms {r['rhs_evals']:>10} "
              f"{r['jacobian_vector_products']:>10} {err:>14.2e}{versus}")


def sweep_row(sw, base):
    """The parameter sweep the SciPy way, against selfheal's rows."""
    from scipy.optimize import fsolve

    rows = range(0, len(sw["values"]), 5)
    x = None
    worst, nfail = 0.0, 0
    t0 = time.perf_counter()
    for i in rows:
        p = dict(base)
        p[sw["param"]] = sw["values"][i]
        rhs = make_rhs(p)
        if x is None:
            lam, dlt = p["sign_on"], p["sign_off"]
            n0 = lam / (lam + dlt)
            x = [n0, p["sn_ratio"] * n0, 0.0]
        x, info, ier, _ = fsolve(lambda y: rhs(0.0, y), x, full_output=True, xtol=1e-12)
        if ier != 1:
            nfail += 1
        n, s, q = x
        f = sw["shock"]
        tot = s + p["dedicated"]
        orphaned = f * s / tot if tot > 0 else 0.0
        n1, s1 = (1 - f) * (1 - orphaned) * n, (1 - f) * s
        y0 = [n1, s1, q + (n - n1) + (s - s1)]
        sol = solve_ivp(rhs, (0.0, sw["t_end"]), y0, method="LSODA", rtol=1e-6, atol=1e-12,
                        t_eval=np.arange(0.0, sw["t_end"] + 1e-9, 1.0))
        lo = float(sol.y[0].min())
        worst = max(worst, abs(lo - sw["min_peers"][i]) / sw["min_peers"][i])
    per_row = (time.perf_counter() - t0) / len(rows)
    ours = sw["median_seconds_per_row"]
    print(f"sweep row (new {sw['param']} each row, healthy state + 48 h after a {sw['shock']} wave):")
    print(f"  selfheal (1 thread, {len(sw['values'])} rows, median of 7 sweeps): {ours * 1e3:.3f} ms/row")
    print(f"  scipy fsolve + LSODA rtol 1e-6 ({len(rows)} rows): {per_row * 1e3:.3f} ms/row "
          f"({nfail} fsolve calls did not report convergence)")
    print(f"  ratio scipy / selfheal: {per_row / ours:.0f}x; min_peers differ by at most {worst:.1e} relative")


if __name__ == "__main__":
    main()
