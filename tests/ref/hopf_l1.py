"""Independent reference for the first Lyapunov coefficient (tests/hopf.rs).

Re-run with `python3 tests/ref/hopf_l1.py` (needs sympy). It checks symbolically:

1. For the planar system of `selfheal::model::textbook::PlanarHopf` at mu = 0,
       x' = -w y + a20 x^2 + a11 x y + a02 y^2 + s x (x^2 + y^2)
       y' =  w x + b20 x^2 + b11 x y + b02 y^2 + s y (x^2 + y^2),
   Kuznetsov's general formula
       l1 = 1/(2w) Re[<p, C(q,q,qb)> - 2 <p, B(q, A^-1 B(q,qb))> + <p, B(qb, (2iw - A)^-1 B(q,q))>]
   with A q = i w q, A^T p = -i w p, <p, q> = 1, <q, q> = 1 (<u, v> = conj(u) . v), equals the
   closed form `PlanarHopf::l1`:
       l1 = 2 s / w + (a11 (a20 + a02) - b11 (b20 + b02) - 2 a20 b20 + 2 a02 b02) / (4 w^2),
   which is also Kuznetsov's planar formula for a system in this Jordan form
       l1 = (f_xxx + f_xyy + g_xxy + g_yyy)/(8w) + (f_xy (f_xx + f_yy) - g_xy (g_xx + g_yy) - f_xx g_xx + f_yy g_yy)/(8 w^2).
2. Under a linear change of coordinates y = T x the coefficient becomes l1 / |T q|^2 (exact), which
   for the planar system is l1 * 2 / |T|_F^2.
3. A three-dimensional system whose centre manifold is curved (the stable direction z is
   driven by and feeds back into the oscillation, so both B-terms matter), its exact l1, and the
   same law under a linear change of coordinates, l1_T = l1 / |T q|^2.
4. The numbers the Rust tests use, printed at the end.
"""

import sympy as sp


def lyapunov(f, xs, w):
    """Kuznetsov's formula at the origin, for a right-hand side f (list) in the variables xs."""
    n = len(xs)
    A = sp.Matrix([[sp.diff(fi, xj) for xj in xs] for fi in f]).subs({x: 0 for x in xs})
    lam = sp.I * w
    # q: null vector of A - i w I, normalised <q, q> = 1.
    q = (A - lam * sp.eye(n)).nullspace()[0]
    q = q / sp.sqrt(sp.simplify((q.H * q)[0]))
    p = (A.T + lam * sp.eye(n)).nullspace()[0]
    p = p / sp.conjugate(sp.simplify((p.H * q)[0]))
    assert sp.simplify((p.H * q)[0] - 1) == 0

    def B(u, v):
        return sp.Matrix([
            sum(sp.diff(fi, xs[j], xs[k]).subs({x: 0 for x in xs}) * u[j] * v[k]
                for j in range(n) for k in range(n))
            for fi in f])

    def C(u, v, z):
        return sp.Matrix([
            sum(sp.diff(fi, xs[j], xs[k], xs[l]).subs({x: 0 for x in xs}) * u[j] * v[k] * z[l]
                for j in range(n) for k in range(n) for l in range(n))
            for fi in f])

    qb = q.conjugate()
    h11 = A.LUsolve(B(q, qb))
    h20 = (2 * sp.I * w * sp.eye(n) - A).LUsolve(B(q, q))
    inner = lambda u, v: (u.H * v)[0]
    val = inner(p, C(q, q, qb)) - 2 * inner(p, B(q, h11)) + inner(p, B(qb, h20))
    return sp.simplify(sp.re(sp.expand_complex(val)) / (2 * w))


x, y = sp.symbols("x y", real=True)
w = sp.symbols("w", positive=True)
s, a20, a11, a02, b20, b11, b02 = sp.symbols("s a20 a11 a02 b20 b11 b02", real=True)
f = [-w * y + a20 * x**2 + a11 * x * y + a02 * y**2 + s * x * (x**2 + y**2),
     w * x + b20 * x**2 + b11 * x * y + b02 * y**2 + s * y * (x**2 + y**2)]
l1 = lyapunov(f, [x, y], w)
closed = 2 * s / w + (a11 * (a20 + a02) - b11 * (b20 + b02) - 2 * a20 * b20 + 2 * a02 * b02) / (4 * w**2)
d = lambda g, *v: sp.diff(g, *v).subs({x: 0, y: 0})
planar = (d(f[0], x, x, x) + d(f[0], x, y, y) + d(f[1], x, x, y) + d(f[1], y, y, y)) / (8 * w) + (
    d(f[0], x, y) * (d(f[0], x, x) + d(f[0], y, y))
    - d(f[1], x, y) * (d(f[1], x, x) + d(f[1], y, y))
    - d(f[0], x, x) * d(f[1], x, x)
    + d(f[0], y, y) * d(f[1], y, y)) / (8 * w**2)
assert sp.simplify(l1 - closed) == 0, (l1, closed)
assert sp.simplify(planar - closed) == 0
print("general formula == closed form == planar formula:", closed)

# 2. A linear change of coordinates u = T (x, y) of a system with rational coefficients.
vals = {w: sp.Rational(3, 2), s: -1, a20: 1, a11: 2, a02: -3, b20: sp.Rational(1, 2), b11: -1, b02: 2}
fn = [fi.subs(vals) for fi in f]
T = sp.Matrix([[2, 1], [sp.Rational(-1, 2), 3]])
u1, u2 = sp.symbols("u1 u2", real=True)
xy = T.inv() * sp.Matrix([u1, u2])
g = T * sp.Matrix([fi.subs({x: xy[0], y: xy[1]}, simultaneous=True) for fi in fn])
l1x = lyapunov(fn, [x, y], vals[w])
l1u = lyapunov(list(sp.expand(g)), [u1, u2], vals[w])
frob = sum(t**2 for t in T)
assert sp.simplify(l1u - l1x * 2 / frob) == 0
print("values", {str(k): v for k, v in vals.items()})
print("  l1 =", l1x, "=", float(l1x))
print("  T =", T.tolist(), ": l1 =", l1u, "=", float(l1u), "= l1 * 2/|T|_F^2")

# The planar case of tests/hopf.rs where the quadratic terms turn s < 0 into a subcritical point.
vals2 = {w: sp.Rational(3, 2), s: sp.Rational(-1, 10), a20: 1, a11: 2, a02: 3, b20: sp.Rational(1, 2), b11: -1, b02: 2}
l1b = closed.subs(vals2)
print("values", {str(k): v for k, v in vals2.items()})
print("  l1 =", l1b, "=", float(l1b))

# 3. tests/hopf.rs `Coupled`: x' = -w y + 2 x z + y^2, y' = w x - y z + x y, z' = -2 z + x^2 + 3 y^2 - x y.
#    Without z the quadratic terms give l1 = 0: all of l1 comes from the curved centre manifold.
z = sp.symbols("z", real=True)
w3 = sp.Rational(3, 2)
f3 = [-w3 * y + 2 * x * z + y**2, w3 * x - y * z + x * y, -2 * z + x**2 + 3 * y**2 - x * y]
l13 = lyapunov(f3, [x, y, z], w3)
print("coupled: l1 =", l13, "=", float(l13))
assert lyapunov([fi.subs(z, 0) for fi in f3[:2]], [x, y], w3) == 0
T3 = sp.Matrix([[1, 2, 0], [0, 1, -1], [1, 0, 3]])
v1, v2, v3 = sp.symbols("v1 v2 v3", real=True)
xyz = T3.inv() * sp.Matrix([v1, v2, v3])
g3 = T3 * sp.Matrix([fi.subs({x: xyz[0], y: xyz[1], z: xyz[2]}, simultaneous=True) for fi in f3])
l13T = lyapunov(list(sp.expand(g3)), [v1, v2, v3], w3)
q3 = sp.Matrix([1, -sp.I, 0]) / sp.sqrt(2)
tq = T3 * q3
norm2 = sp.simplify((tq.H * tq)[0])
assert sp.simplify(l13T - l13 / norm2) == 0
print("  T =", T3.tolist(), ": l1 =", sp.nsimplify(l13T), "=", float(l13T), "= l1 / |T q|^2, |T q|^2 =", norm2)
