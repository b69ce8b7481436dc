//! A model file's right-hand side compiled to one register program: every `let`, every rate of
//! a transition list and the accumulation of their jumps, as three-address instructions over one
//! array of slots (inputs, constants, intermediate values, the flow).
//!
//! The expression programs of [`super::expr`] evaluate one expression at a time over a stack,
//! loading each name through a lookup; here a name costs nothing (its slot is read in place), a
//! `let` is computed once for all transitions, and a jump of ±1 is an addition. The values are
//! the same operations in the same order as the expression programs perform them, so the two
//! agree to the last bit (tests below and in `tests/modelfile.rs`).
//!
//! Slot layout: `[x (N) | p (P) | h (H) | t | constants | values | flow (N)]`.

use super::expr::{call, Expr, Func, Op, Ref};
use crate::model::safe::pow;
use crate::model::Scalar;

/// The most slots a program may use (larger models evaluate through the expression programs).
pub(crate) const MAX_SLOTS: usize = 256;

/// A slot index.
type Slot = u16;

/// One instruction: the destination slot first.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ins {
    Add(Slot, Slot, Slot),
    Sub(Slot, Slot, Slot),
    Mul(Slot, Slot, Slot),
    Div(Slot, Slot, Slot),
    Neg(Slot, Slot),
    PowConst(Slot, Slot, f64),
    Call1(Func, Slot, Slot),
    Call2(Func, Slot, Slot, Slot),
    Call3(Func, Slot, [Slot; 3]),
    /// `flow += value`.
    Inc(Slot, Slot),
    /// `flow −= value`.
    Dec(Slot, Slot),
    /// `flow += value · c`.
    IncBy(Slot, Slot, f64),
}

/// A compiled flow (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Program {
    code: Vec<Ins>,
    consts: Vec<f64>,
    n: usize,
    n_params: usize,
    n_hazards: usize,
    /// The slot of each transition's rate, in list order.
    rate_slots: Vec<Slot>,
    /// First slot of the flow.
    out: usize,
    slots: usize,
}

/// Where an operand lives while the program is built (constants and values are numbered once
/// their counts are known).
#[derive(Debug, Clone, Copy, PartialEq)]
enum At {
    In(usize),
    Const(usize),
    Value(usize),
    Flow(usize),
}

#[derive(Clone, Copy)]
enum Draft {
    Bin(fn(Slot, Slot, Slot) -> Ins, At, At, At),
    Neg(At, At),
    PowConst(At, At, f64),
    Call(Func, At, [At; 3], usize),
    Inc(At, At),
    Dec(At, At),
    IncBy(At, At, f64),
}

struct Builder {
    n: usize,
    n_params: usize,
    n_hazards: usize,
    consts: Vec<f64>,
    values: usize,
    lets: Vec<At>,
    code: Vec<Draft>,
}

impl Builder {
    fn input(&self, r: Ref) -> At {
        match r {
            Ref::State(i) => At::In(i),
            Ref::Param(i) => At::In(self.n + i),
            Ref::Hazard(i) => At::In(self.n + self.n_params + i),
            Ref::Time => At::In(self.n + self.n_params + self.n_hazards),
            Ref::Let(i) => self.lets[i],
        }
    }

    fn constant(&mut self, v: f64) -> At {
        let k = match self.consts.iter().position(|c| c.to_bits() == v.to_bits()) {
            Some(k) => k,
            None => {
                self.consts.push(v);
                self.consts.len() - 1
            }
        };
        At::Const(k)
    }

    fn value(&mut self) -> At {
        self.values += 1;
        At::Value(self.values - 1)
    }

    /// The instructions of one expression; returns where its value is.
    fn expr(&mut self, e: &Expr) -> At {
        let mut st: Vec<At> = Vec::with_capacity(8);
        for op in e.ops() {
            let at = match *op {
                Op::Const(v) => self.constant(v),
                Op::Load(r) => self.input(r),
                Op::Add | Op::Sub | Op::Mul | Op::Div => {
                    let b = st.pop().expect("checked postfix program");
                    let a = st.pop().expect("checked postfix program");
                    let d = self.value();
                    let make: fn(Slot, Slot, Slot) -> Ins = match *op {
                        Op::Add => Ins::Add,
                        Op::Sub => Ins::Sub,
                        Op::Mul => Ins::Mul,
                        _ => Ins::Div,
                    };
                    self.code.push(Draft::Bin(make, d, a, b));
                    d
                }
                Op::Neg => {
                    let a = st.pop().expect("checked postfix program");
                    let d = self.value();
                    self.code.push(Draft::Neg(d, a));
                    d
                }
                Op::PowConst(c) => {
                    let a = st.pop().expect("checked postfix program");
                    let d = self.value();
                    self.code.push(Draft::PowConst(d, a, c));
                    d
                }
                Op::Call(f, k) => {
                    let mut args = [At::In(0); 3];
                    for j in (0..k).rev() {
                        args[j] = st.pop().expect("checked postfix program");
                    }
                    let d = self.value();
                    self.code.push(Draft::Call(f, d, args, k));
                    d
                }
            };
            st.push(at);
        }
        st.pop().expect("a non-empty expression")
    }
}

impl Program {
    /// Compiles the lets and the rates and jumps of `list` (`(rate, jump)` per transition) for
    /// `n` states, `n_params` parameters and `n_hazards` shock hazards; `None` when a function
    /// takes more than three arguments or the program would need more than [`MAX_SLOTS`] slots.
    pub(crate) fn compile<'a>(
        n: usize,
        n_params: usize,
        n_hazards: usize,
        lets: impl IntoIterator<Item = &'a Expr>,
        list: impl IntoIterator<Item = (&'a Expr, &'a [(usize, f64)])>,
    ) -> Option<Self> {
        let mut rate_at = vec![];
        let mut b = Builder {
            n,
            n_params,
            n_hazards,
            consts: vec![],
            values: 0,
            lets: vec![],
            code: vec![],
        };
        for e in lets {
            if e.ops()
                .iter()
                .any(|op| matches!(op, Op::Call(_, k) if *k > 3))
            {
                return None;
            }
            let at = b.expr(e);
            b.lets.push(at);
        }
        for (rate, jump) in list {
            if rate
                .ops()
                .iter()
                .any(|op| matches!(op, Op::Call(_, k) if *k > 3))
            {
                return None;
            }
            let r = b.expr(rate);
            rate_at.push(r);
            for &(i, v) in jump {
                b.code.push(if v == 1.0 {
                    Draft::Inc(At::Flow(i), r)
                } else if v == -1.0 {
                    Draft::Dec(At::Flow(i), r)
                } else {
                    Draft::IncBy(At::Flow(i), r, v)
                });
            }
        }
        let n_in = n + n_params + n_hazards + 1;
        let first_value = n_in + b.consts.len();
        let out = first_value + b.values;
        let slots = out + n;
        if slots > MAX_SLOTS {
            return None;
        }
        let s = |a: At| -> Slot {
            (match a {
                At::In(i) => i,
                At::Const(k) => n_in + k,
                At::Value(j) => first_value + j,
                At::Flow(i) => out + i,
            }) as Slot
        };
        let code = b
            .code
            .iter()
            .map(|d| match *d {
                Draft::Bin(make, d, a, c) => make(s(d), s(a), s(c)),
                Draft::Neg(d, a) => Ins::Neg(s(d), s(a)),
                Draft::PowConst(d, a, c) => Ins::PowConst(s(d), s(a), c),
                Draft::Call(f, d, a, 1) => Ins::Call1(f, s(d), s(a[0])),
                Draft::Call(f, d, a, 2) => Ins::Call2(f, s(d), s(a[0]), s(a[1])),
                Draft::Call(f, d, a, _) => Ins::Call3(f, s(d), [s(a[0]), s(a[1]), s(a[2])]),
                Draft::Inc(d, a) => Ins::Inc(s(d), s(a)),
                Draft::Dec(d, a) => Ins::Dec(s(d), s(a)),
                Draft::IncBy(d, a, c) => Ins::IncBy(s(d), s(a), c),
            })
            .collect();
        Some(Self {
            code,
            consts: b.consts,
            n,
            n_params,
            n_hazards,
            rate_slots: rate_at.into_iter().map(s).collect(),
            out,
            slots,
        })
    }

    /// Runs the program at `(t, x, p, h)` (missing hazards are zero) and returns its slots.
    #[inline]
    fn run<T: Scalar, const S: usize>(&self, t: T, x: &[T], p: &[T], h: &[T]) -> [T; S] {
        let zero = T::from(0.0);
        let mut s = [zero; S];
        s[..self.n].copy_from_slice(&x[..self.n]);
        let mut k = self.n;
        s[k..k + self.n_params].copy_from_slice(&p[..self.n_params]);
        k += self.n_params;
        for i in 0..self.n_hazards {
            s[k + i] = h.get(i).copied().unwrap_or(zero);
        }
        k += self.n_hazards;
        s[k] = t;
        k += 1;
        for (i, c) in self.consts.iter().enumerate() {
            s[k + i] = T::from(*c);
        }
        for ins in &self.code {
            match *ins {
                Ins::Add(d, a, b) => s[d as usize] = s[a as usize] + s[b as usize],
                Ins::Sub(d, a, b) => s[d as usize] = s[a as usize] - s[b as usize],
                Ins::Mul(d, a, b) => s[d as usize] = s[a as usize] * s[b as usize],
                Ins::Div(d, a, b) => s[d as usize] = s[a as usize] / s[b as usize],
                Ins::Neg(d, a) => s[d as usize] = -s[a as usize],
                Ins::PowConst(d, a, c) => s[d as usize] = pow(s[a as usize], c),
                Ins::Call1(f, d, a) => s[d as usize] = call(f, &[s[a as usize]]),
                Ins::Call2(f, d, a, b) => {
                    s[d as usize] = call(f, &[s[a as usize], s[b as usize]]);
                }
                Ins::Call3(f, d, [a, b, c]) => {
                    s[d as usize] = call(f, &[s[a as usize], s[b as usize], s[c as usize]]);
                }
                Ins::Inc(d, a) => {
                    let v = s[a as usize];
                    s[d as usize] += v;
                }
                Ins::Dec(d, a) => {
                    let v = s[a as usize];
                    s[d as usize] -= v;
                }
                Ins::IncBy(d, a, c) => {
                    let v = s[a as usize] * T::from(c);
                    s[d as usize] += v;
                }
            }
        }
        s
    }

    /// Runs the program in the smallest slot array that holds it and hands the slots to `read`.
    #[inline]
    fn eval<T: Scalar, R>(
        &self,
        (t, x, p, h): (T, &[T], &[T], &[T]),
        read: impl FnOnce(&[T]) -> R,
    ) -> R {
        if self.slots <= 64 {
            read(&self.run::<T, 64>(t, x, p, h))
        } else if self.slots <= 128 {
            read(&self.run::<T, 128>(t, x, p, h))
        } else {
            read(&self.run::<T, MAX_SLOTS>(t, x, p, h))
        }
    }

    /// Appends the rate of every transition of the list, in order, to `out`.
    pub(crate) fn rates(&self, t: f64, x: &[f64], p: &[f64], h: &[f64], out: &mut Vec<f64>) {
        self.eval((t, x, p, h), |s| {
            out.extend(self.rate_slots.iter().map(|r| s[*r as usize]));
        });
    }

    /// The flow `Σ rate · jump` into `dx` (length `N`).
    #[inline]
    pub(crate) fn flow<T: Scalar>(&self, t: T, x: &[T], p: &[T], h: &[T], dx: &mut [T]) {
        self.eval((t, x, p, h), |s| {
            dx.copy_from_slice(&s[self.out..self.out + self.n]);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ModelFile, Transition};
    use crate::model::Scalar;
    use num_dual::DualSVec64;
    use std::path::Path;

    /// The flow as the expression programs compute it, one transition at a time.
    fn by_expressions<T: Scalar>(
        mf: &ModelFile,
        list: &[Transition],
        t: T,
        x: &[T],
        p: &[T],
        h: &[T],
    ) -> Vec<T> {
        let mut dx = vec![T::from(0.0); x.len()];
        mf.rates(list, t, x, p, h, |tr, r| {
            for &(i, v) in &tr.jump {
                dx[i] += r * T::from(v);
            }
        });
        dx
    }

    /// A reproducible uniform number in [0, 1).
    fn uniform(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Both evaluators give the same bits, values and derivatives, at random states, parameters
    /// and hazards of every shipped model, for the flow and the shock flow, and the same rates.
    #[test]
    fn the_register_program_computes_what_the_expressions_compute() {
        let mut seed = 7u64;
        for name in ["p2p", "aloha", "bittorrent", "retry-storm"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("models/{name}.toml"));
            let mf = ModelFile::load(&path).unwrap();
            let n = mf.dim();
            for (k, list) in [&mf.transitions, &mf.shock_transitions]
                .into_iter()
                .enumerate()
            {
                if list.is_empty() {
                    continue;
                }
                let prog = mf.programs[k]
                    .as_ref()
                    .expect("a shipped model fits in a program");
                for _ in 0..500 {
                    let p: Vec<f64> = mf
                        .params
                        .iter()
                        .map(|s| s.default * (0.5 + 1.5 * uniform(&mut seed)))
                        .collect();
                    let x: Vec<f64> = (0..n)
                        .map(|i| {
                            let hi = mf.state_max(i, &p).filter(|v| v.is_finite());
                            uniform(&mut seed) * hi.unwrap_or(100.0)
                        })
                        .collect();
                    let h = [uniform(&mut seed), uniform(&mut seed)];
                    let t = 100.0 * uniform(&mut seed);
                    let want = by_expressions(&mf, list, t, &x, &p, &h);
                    let mut got = vec![0.0; n];
                    prog.flow(t, &x, &p, &h, &mut got);
                    for (a, b) in got.iter().zip(&want) {
                        assert_eq!(a.to_bits(), b.to_bits(), "{name}: {got:?} vs {want:?}");
                    }
                    // Each rate, as the stochastic chain reads them.
                    let mut rates = vec![];
                    prog.rates(t, &x, &p, &h, &mut rates);
                    let mut each = vec![];
                    mf.rates(list, t, &x, &p, &h, |_, r| each.push(r));
                    assert_eq!(rates.len(), list.len());
                    for (a, b) in rates.iter().zip(&each) {
                        assert_eq!(a.to_bits(), b.to_bits(), "{name}: {rates:?} vs {each:?}");
                    }
                    // Derivatives in the first state and the first parameter.
                    type D = DualSVec64<2>;
                    let seeded = |v: f64, j: Option<usize>| match j {
                        Some(j) => D::from_re(v).derivative(j),
                        None => D::from_re(v),
                    };
                    let xd: Vec<D> = x
                        .iter()
                        .enumerate()
                        .map(|(i, v)| seeded(*v, (i == 0).then_some(0)))
                        .collect();
                    let pd: Vec<D> = p
                        .iter()
                        .enumerate()
                        .map(|(i, v)| seeded(*v, (i == 0).then_some(1)))
                        .collect();
                    let hd = h.map(D::from_re);
                    let td = D::from_re(t);
                    let want = by_expressions(&mf, list, td, &xd, &pd, &hd);
                    let mut got = vec![D::from_re(0.0); n];
                    prog.flow(td, &xd, &pd, &hd, &mut got);
                    assert_eq!(format!("{got:?}"), format!("{want:?}"), "{name}");
                }
            }
        }
    }

    /// A model too large for one program evaluates through the expression programs.
    #[test]
    fn a_model_beyond_the_slot_limit_falls_back_to_the_expressions() {
        let long = vec!["x*a"; 300].join(" + ");
        let text = format!(
            "name = \"big\"\n[states]\nx = {{ max = 1 }}\n[params]\na = {{ default = 0.5, min = 0 }}\n\
             [[transition]]\nname = \"out\"\njump = {{ x = -1 }}\nrate = \"{long}\"\n"
        );
        let dir = std::env::temp_dir().join(format!("selfheal-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.toml");
        std::fs::write(&path, text).unwrap();
        let mf = ModelFile::load(&path).unwrap();
        assert!(mf.programs[0].is_none());
        let m = mf.typed::<1>().unwrap();
        let dx = crate::model::Model::rhs(&m, 0.0, &nalgebra::SVector::from([0.25]), &[0.5]);
        // 300 terms of x·a = 0.125, summed left to right: exact in binary.
        assert_eq!(dx[0], -300.0 * 0.125);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
