//! Expressions of model files: parsed once into a compact postfix program, evaluated generically
//! over the scalar ([`Scalar`]: `f64`, dual numbers for exact Jacobians and sensitivities).
//!
//! Grammar (usual precedence; `^` binds tighter than unary minus and associates to the right,
//! so `-x^2 = -(x^2)` and `2^3^2 = 2^9`):
//!
//! ```text
//! expr  := term (('+' | '-') term)*
//! term  := unary (('*' | '/') unary)*
//! unary := '-' unary | power
//! power := atom ('^' unary)?
//! atom  := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
//! ```

use crate::model::safe::{hill_ratio_by, pow};
use crate::model::Scalar;

/// What a name in an expression refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ref {
    /// The state with this index.
    State(usize),
    /// The parameter with this index.
    Param(usize),
    /// The `let` value with this index (only earlier ones are visible).
    Let(usize),
    /// The hazard of the shock fraction with this index (`h_NAME`).
    Hazard(usize),
    /// Time.
    Time,
}

/// A function of the expression language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Exp,
    Ln,
    Log10,
    Sqrt,
    Abs,
    Min,
    Max,
    Pow,
    Hill,
    Hillc,
    Logistic,
    Ratio,
}

impl Func {
    /// Every function with its name and number of arguments.
    pub(crate) const ALL: [(Func, &'static str, usize); 12] = [
        (Func::Exp, "exp", 1),
        (Func::Ln, "ln", 1),
        (Func::Log10, "log10", 1),
        (Func::Sqrt, "sqrt", 1),
        (Func::Abs, "abs", 1),
        (Func::Min, "min", 2),
        (Func::Max, "max", 2),
        (Func::Pow, "pow", 2),
        (Func::Hill, "hill", 3),
        (Func::Hillc, "hillc", 3),
        (Func::Logistic, "logistic", 1),
        (Func::Ratio, "ratio", 2),
    ];

    fn lookup(name: &str) -> Option<(Func, usize)> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(f, _, k)| (*f, *k))
    }
}

/// One instruction of a postfix program.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Const(f64),
    Load(Ref),
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    /// `x ^ c` with a constant exponent (integer powers by repeated squaring).
    PowConst(f64),
    /// A function and its number of arguments.
    Call(Func, usize),
}

/// The deepest evaluation stack a program may need.
pub(crate) const MAX_DEPTH: usize = 32;

/// A compiled expression: a postfix program over a fixed-size stack.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expr {
    ops: Vec<Op>,
    /// The stack depth it needs.
    depth: usize,
    /// The names it uses, as resolved.
    pub(crate) uses: Vec<Ref>,
}

/// Where a compile error is, in characters from the start of the expression, and what it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExprError {
    pub(crate) at: usize,
    pub(crate) message: String,
    /// An unknown name, for the caller's nearest-name hint.
    pub(crate) unknown: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Sym(char),
}

fn lex(text: &str) -> Result<Vec<(usize, Tok)>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    let err = |at: usize, m: String| ExprError {
        at,
        message: m,
        unknown: None,
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s: String = chars[start..i].iter().collect();
            let v: f64 = s
                .parse()
                .map_err(|_| err(start, format!("`{s}` is not a number")))?;
            if !v.is_finite() {
                return Err(err(start, format!("`{s}` is not a finite number")));
            }
            out.push((start, Tok::Num(v)));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Name(chars[start..i].iter().collect())));
        } else if "+-*/^(),".contains(c) {
            out.push((i, Tok::Sym(c)));
            i += 1;
        } else {
            return Err(err(i, format!("unexpected character `{c}`")));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    resolve: &'a dyn Fn(&str) -> Option<Ref>,
    ops: Vec<Op>,
    uses: Vec<Ref>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(a, _)| *a)
    }
    fn err(&self, message: String) -> ExprError {
        ExprError {
            at: self.at(),
            message,
            unknown: None,
        }
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Result<(), ExprError> {
        self.term()?;
        loop {
            if self.eat('+') {
                self.term()?;
                self.ops.push(Op::Add);
            } else if self.eat('-') {
                self.term()?;
                self.ops.push(Op::Sub);
            } else {
                return Ok(());
            }
        }
    }

    fn term(&mut self) -> Result<(), ExprError> {
        self.unary()?;
        loop {
            if self.eat('*') {
                self.unary()?;
                self.ops.push(Op::Mul);
            } else if self.eat('/') {
                self.unary()?;
                self.ops.push(Op::Div);
            } else {
                return Ok(());
            }
        }
    }

    fn unary(&mut self) -> Result<(), ExprError> {
        if self.eat('-') {
            self.unary()?;
            // A negative literal stays a constant.
            match self.ops.last_mut() {
                Some(Op::Const(v)) => *v = -*v,
                _ => self.ops.push(Op::Neg),
            }
            Ok(())
        } else if self.eat('+') {
            self.unary()
        } else {
            self.power()
        }
    }

    fn power(&mut self) -> Result<(), ExprError> {
        self.atom()?;
        if self.eat('^') {
            let mark = self.ops.len();
            self.unary()?;
            if self.ops.len() == mark + 1 {
                if let Op::Const(c) = self.ops[mark] {
                    self.ops.pop();
                    self.ops.push(Op::PowConst(c));
                    return Ok(());
                }
            }
            self.ops.push(Op::Call(Func::Pow, 2));
        }
        Ok(())
    }

    fn atom(&mut self) -> Result<(), ExprError> {
        let at = self.at();
        match self.peek().cloned() {
            Some(Tok::Num(v)) => {
                self.pos += 1;
                self.ops.push(Op::Const(v));
                Ok(())
            }
            Some(Tok::Sym('(')) => {
                self.pos += 1;
                self.expr()?;
                if !self.eat(')') {
                    return Err(self.err("missing `)`".into()));
                }
                Ok(())
            }
            Some(Tok::Name(name)) => {
                self.pos += 1;
                if self.eat('(') {
                    let Some((f, arity)) = Func::lookup(&name) else {
                        return Err(ExprError {
                            at,
                            message: format!("unknown function `{name}`"),
                            unknown: Some(name),
                        });
                    };
                    let mut n = 0;
                    if !self.eat(')') {
                        loop {
                            self.expr()?;
                            n += 1;
                            if self.eat(')') {
                                break;
                            }
                            if !self.eat(',') {
                                return Err(self.err(format!("expected `,` or `)` in `{name}(…)`")));
                            }
                        }
                    }
                    if n != arity {
                        return Err(ExprError {
                            at,
                            message: format!(
                                "`{name}` takes {arity} argument{}, not {n}",
                                if arity == 1 { "" } else { "s" }
                            ),
                            unknown: None,
                        });
                    }
                    self.ops.push(Op::Call(f, arity));
                    return Ok(());
                }
                match (self.resolve)(&name) {
                    Some(r) => {
                        if !self.uses.contains(&r) {
                            self.uses.push(r);
                        }
                        self.ops.push(Op::Load(r));
                        Ok(())
                    }
                    None if Func::lookup(&name).is_some() => Err(ExprError {
                        at,
                        message: format!("`{name}` is a function: write `{name}(…)`"),
                        unknown: None,
                    }),
                    None => Err(ExprError {
                        at,
                        message: format!("unknown name `{name}`"),
                        unknown: Some(name),
                    }),
                }
            }
            Some(Tok::Sym(c)) => Err(self.err(format!("unexpected `{c}`"))),
            None => Err(self.err("the expression ends too early".into())),
        }
    }
}

/// The stack depth a program needs, or `None` if it is malformed.
fn depth(ops: &[Op]) -> Option<usize> {
    let (mut d, mut max) = (0usize, 0usize);
    for op in ops {
        let (pop, push) = match op {
            Op::Const(_) | Op::Load(_) => (0, 1),
            Op::Add | Op::Sub | Op::Mul | Op::Div => (2, 1),
            Op::Neg | Op::PowConst(_) => (1, 1),
            Op::Call(_, k) => (*k, 1),
        };
        d = d.checked_sub(pop)? + push;
        max = max.max(d);
    }
    (d == 1).then_some(max)
}

impl Expr {
    /// Compiles `text`; `resolve` says what each name refers to (`None`: unknown).
    pub(crate) fn compile(
        text: &str,
        resolve: &dyn Fn(&str) -> Option<Ref>,
    ) -> Result<Self, ExprError> {
        let toks = lex(text)?;
        let end = text.chars().count();
        if toks.is_empty() {
            return Err(ExprError {
                at: 0,
                message: "the expression is empty".into(),
                unknown: None,
            });
        }
        let mut p = Parser {
            toks,
            pos: 0,
            end,
            resolve,
            ops: vec![],
            uses: vec![],
        };
        p.expr()?;
        if p.pos < p.toks.len() {
            return Err(p.err("unexpected text after the expression".into()));
        }
        match depth(&p.ops) {
            Some(d) if d <= MAX_DEPTH => Ok(Self {
                ops: p.ops,
                depth: d,
                uses: p.uses,
            }),
            _ => Err(ExprError {
                at: 0,
                message: format!("the expression nests deeper than {MAX_DEPTH} levels"),
                unknown: None,
            }),
        }
    }

    /// Its postfix program.
    pub(crate) fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Whether the expression is a constant (uses no name).
    pub(crate) fn is_constant(&self) -> bool {
        self.uses.is_empty()
    }

    /// The value, with `load` giving the value of each name.
    #[inline]
    pub(crate) fn eval<T: Scalar>(&self, load: &impl Fn(Ref) -> T) -> T {
        // A stack no deeper than needed: it is filled anew for every evaluation.
        if self.depth <= 6 {
            self.eval_in::<T, 6>(load)
        } else {
            self.eval_in::<T, MAX_DEPTH>(load)
        }
    }

    #[inline]
    fn eval_in<T: Scalar, const D: usize>(&self, load: &impl Fn(Ref) -> T) -> T {
        let zero = T::from(0.0);
        let mut st = [zero; D];
        let mut n = 0usize;
        for op in &self.ops {
            match *op {
                Op::Const(v) => {
                    st[n] = T::from(v);
                    n += 1;
                }
                Op::Load(r) => {
                    st[n] = load(r);
                    n += 1;
                }
                Op::Add => {
                    n -= 1;
                    st[n - 1] += st[n];
                }
                Op::Sub => {
                    n -= 1;
                    st[n - 1] -= st[n];
                }
                Op::Mul => {
                    n -= 1;
                    st[n - 1] *= st[n];
                }
                Op::Div => {
                    n -= 1;
                    st[n - 1] /= st[n];
                }
                Op::Neg => st[n - 1] = -st[n - 1],
                Op::PowConst(c) => st[n - 1] = pow(st[n - 1], c),
                Op::Call(f, k) => {
                    let a = &st[n - k..n];
                    let v = call(f, a);
                    n -= k;
                    st[n] = v;
                    n += 1;
                }
            }
        }
        st[0]
    }
}

/// `x^n` with `n` a scalar too: the value as [`pow`] computes it at `n`'s real part, times
/// `exp(ln x · (n − re n))`, whose real part is exactly 1, for the derivatives in `n` (none
/// are carried for plain `f64`).
#[inline]
fn pow_scalar<T: Scalar>(x: T, n: T) -> T {
    let n0 = n.re();
    let base = pow(x, n0);
    if T::NDERIV == 0 || x.re() <= 0.0 {
        base
    } else {
        base * (x.ln() * (n - T::from(n0))).exp()
    }
}

/// `(xⁿ/(kⁿ + xⁿ), kⁿ/(kⁿ + xⁿ))` in the overflow-safe form of [`crate::model::safe::hill_ratio`] (the smaller of
/// `x/k`, `k/x` raised to `n`; the same conventions at `x = 0` and `k = 0`), with derivatives
/// in `n` as well.
#[inline]
fn hill_pair<T: Scalar>(x: T, k: T, n: T) -> (T, T) {
    hill_ratio_by(x, k, n.re(), |r| pow_scalar(r, n))
}

#[inline]
pub(crate) fn call<T: Scalar>(f: Func, a: &[T]) -> T {
    let one = T::from(1.0);
    match f {
        Func::Exp => a[0].exp(),
        Func::Ln => a[0].ln(),
        Func::Log10 => a[0].log10(),
        Func::Sqrt => a[0].sqrt(),
        Func::Abs => {
            if a[0].re() < 0.0 {
                -a[0]
            } else {
                a[0]
            }
        }
        Func::Min => {
            if a[1].re() < a[0].re() {
                a[1]
            } else {
                a[0]
            }
        }
        Func::Max => {
            if a[1].re() > a[0].re() {
                a[1]
            } else {
                a[0]
            }
        }
        Func::Pow => pow_scalar(a[0], a[1]),
        Func::Hill => hill_pair(a[0], a[1], a[2]).0,
        Func::Hillc => hill_pair(a[0], a[1], a[2]).1,
        Func::Logistic => {
            // 1/(1 + e^(−z)), without overflow for large |z|.
            if a[0].re() >= 0.0 {
                (one + (-a[0]).exp()).recip()
            } else {
                let e = a[0].exp();
                e / (one + e)
            }
        }
        Func::Ratio => {
            if a[1].re().abs() < f64::MIN_POSITIVE {
                T::from(0.0)
            } else {
                a[0] / a[1]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_dual::Dual64;

    fn names(n: &str) -> Option<Ref> {
        match n {
            "x" => Some(Ref::State(0)),
            "y" => Some(Ref::State(1)),
            "a" => Some(Ref::Param(0)),
            "t" => Some(Ref::Time),
            _ => None,
        }
    }

    fn value(text: &str, x: f64, y: f64, a: f64) -> f64 {
        let e = Expr::compile(text, &names).unwrap();
        e.eval(&|r| match r {
            Ref::State(0) => x,
            Ref::State(1) => y,
            Ref::Param(0) => a,
            _ => 0.0,
        })
    }

    #[test]
    fn precedence_and_associativity_follow_the_usual_rules() {
        assert_eq!(value("1 + 2*3", 0.0, 0.0, 0.0), 7.0);
        assert_eq!(value("-x^2", 3.0, 0.0, 0.0), -9.0);
        assert_eq!(value("2^3^2", 0.0, 0.0, 0.0), 512.0);
        assert_eq!(value("(1 + 2)*3 - 4/2", 0.0, 0.0, 0.0), 7.0);
        assert_eq!(value("x - y - a", 10.0, 3.0, 2.0), 5.0);
        assert_eq!(value("x / y / a", 12.0, 3.0, 2.0), 2.0);
        assert_eq!(value("2e-3*1.5E2", 0.0, 0.0, 0.0), 0.3);
        assert_eq!(value("min(x, y) + max(x, y)", 4.0, 7.0, 0.0), 11.0);
        assert_eq!(value("abs(-x)", 2.5, 0.0, 0.0), 2.5);
        assert_eq!(value("ratio(x, y)", 1.0, 0.0, 0.0), 0.0);
        assert!((value("logistic(a)", 0.0, 0.0, -800.0)).abs() < 1e-300);
        assert_eq!(value("logistic(a)", 0.0, 0.0, 800.0), 1.0);
        // hill and its complement in the overflow-safe form.
        assert_eq!(value("hill(x, y, a)", 0.0, 1.0, 4.0), 0.0);
        assert_eq!(
            value("hill(x, y, a) + hillc(x, y, a)", 1e300, 1.0, 8.0),
            1.0
        );
        assert!((value("hill(x, y, a)", 2.0, 1.0, 3.0) - 8.0 / 9.0).abs() < 1e-15);
    }

    #[test]
    fn derivatives_are_exact_including_in_exponents() {
        // d/da of x^a and of hill(x, 1, a) at x = 2, a = 3, against closed forms.
        let e = Expr::compile("x^a + hill(x, 1, a) + exp(a)*ln(x)", &names).unwrap();
        let d = e.eval(&|r| match r {
            Ref::State(0) => Dual64::from(2.0),
            Ref::Param(0) => Dual64::from(3.0).derivative(),
            _ => Dual64::from(0.0),
        });
        let h = 8.0 / 9.0;
        let exact = 8.0 * 2f64.ln() + h * (1.0 - h) * 2f64.ln() + 3f64.exp() * 2f64.ln();
        assert!(
            (d.eps - exact).abs() < 1e-13 * exact,
            "{} vs {exact}",
            d.eps
        );
        assert_eq!(d.re, 8.0 + h + 3f64.exp() * 2f64.ln());
    }

    #[test]
    fn bad_expressions_say_where_and_what() {
        let bad = |t: &str| Expr::compile(t, &names).unwrap_err();
        assert_eq!(bad("x + z").unknown.as_deref(), Some("z"));
        assert_eq!(bad("x + z").at, 4);
        assert!(bad("foo(x)").message.contains("unknown function `foo`"));
        assert!(bad("hill(x, 1)").message.contains("takes 3 arguments"));
        assert!(bad("(x + 1").message.contains("missing `)`"));
        assert!(bad("x +").message.contains("ends too early"));
        assert!(bad("x y").message.contains("unexpected text"));
        assert!(bad("").message.contains("empty"));
        assert!(bad("x $ 2").message.contains("unexpected character"));
        assert!(bad("exp + 1").message.contains("is a function"));
        let deep = format!("{}x{}", "(1+".repeat(40), ")".repeat(40));
        assert!(bad(&deep).message.contains("deeper"));
    }
}
