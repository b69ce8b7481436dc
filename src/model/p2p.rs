//! The reference model: online peers, supernodes and the login queue (docs/model.md).

use super::safe::hill_ratio;
use super::{Bound, Model, ParamSpec, Scalar, SearchRange, StateSpec};
use crate::error::Error;
use nalgebra::{SMatrix, SVector};
use std::borrow::Cow;

/// Positions of the reference model's parameters in its table (and in value vectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum P2pIdx {
    /// λ, sign-on rate.
    SignOn,
    /// δ, sign-off rate of peers.
    SignOff,
    /// δs, normal sign-off rate of supernodes.
    SnSignOff,
    /// r, login attempts per queued client per minute.
    Retry,
    /// θ, give-up rate of queued clients.
    GiveUp,
    /// a, load per attached peer.
    PeerLoad,
    /// κ, capacity of one supernode.
    SnCapacity,
    /// S0, dedicated supernode capacity.
    Dedicated,
    /// m, steepness of login success.
    SuccessSteepness,
    /// φ0, top overload shutdown rate.
    OverloadRate,
    /// ρc, utilisation at half the top shutdown rate.
    OverloadThreshold,
    /// n, steepness of shutdowns.
    OverloadSteepness,
    /// γ, promotion rate.
    Promotion,
    /// p, eligible fraction of peers.
    Eligible,
    /// σ, target supernodes per online peer.
    SnRatio,
    /// k, steepness of the promotion switch.
    NeedSteepness,
    /// ηc, crash hazard of a peer's client (revision 3).
    Crash,
    /// ηcs, crash hazard of a supernode's client (revision 3).
    SnCrash,
}

const fn spec(
    name: &'static str,
    symbol: &'static str,
    unit: &'static str,
    default: f64,
    lower: Bound,
    upper: Bound,
    meaning: &'static str,
) -> ParamSpec {
    ParamSpec::new(name, symbol, unit, default, (lower, upper), meaning)
}

const NONNEG: Bound = Bound::Closed(0.0);
const POS: Bound = Bound::Open(0.0);
const INF: Bound = Bound::Unbounded;

/// The parameter table of the reference model (docs/model.md), in [`P2pIdx`] order.
#[rustfmt::skip]
pub static P2P_PARAMS: [ParamSpec; 18] = [
    spec("sign_on", "λ", "1/min", 1.0 / 480.0, NONNEG, INF, "rate at which offline users start the client and join the queue"),
    spec("sign_off", "δ", "1/min", 1.0 / 240.0, NONNEG, INF, "rate at which online peers leave"),
    spec("sn_sign_off", "δs", "1/min", 1.0 / 720.0, NONNEG, INF, "rate at which supernodes leave normally"),
    spec("retry", "r", "1/min", 4.0, POS, INF, "login attempts per queued client per minute"),
    spec("give_up", "θ", "1/min", 0.05, NONNEG, INF, "rate at which queued clients stop trying (back to offline)"),
    spec("peer_load", "a", "req/min", 1.0, NONNEG, INF, "load each attached peer puts on its supernode"),
    spec("sn_capacity", "κ", "req/min", 1000.0, POS, INF, "requests one supernode can serve per minute"),
    spec("dedicated", "S0", "fraction", 1e-5, NONNEG, INF, "operator-run supernode capacity (in supernode units); never fails"),
    spec("success_steepness", "m", "-", 4.0, POS, INF, "how sharply login success falls with load"),
    spec("overload_rate", "φ0", "1/min", 0.5, NONNEG, INF, "top rate at which an overloaded supernode shuts down"),
    spec("overload_threshold", "ρc", "-", 1.0, POS, INF, "utilisation at which shutdowns reach half their top rate"),
    spec("overload_steepness", "n", "-", 8.0, POS, INF, "how sharply shutdowns rise around ρc"),
    spec("promotion", "γ", "1/min", 0.004, NONNEG, INF, "rate at which an eligible peer is promoted when supernodes are needed"),
    spec("eligible", "p", "-", 0.01, NONNEG, Bound::Closed(1.0), "fraction of online peers that may become supernodes"),
    spec("sn_ratio", "σ", "-", 1.0 / 300.0, NONNEG, Bound::Closed(1.0), "supernodes the network aims to keep per online peer"),
    spec("need_steepness", "k", "-", 20.0, POS, INF, "how sharply promotion switches off once the target is met"),
    spec("crash", "ηc", "1/min", 0.0, NONNEG, INF, "hazard at which an online peer's client crashes and restarts (a faulty release)"),
    spec("sn_crash", "ηcs", "1/min", 0.0, NONNEG, INF, "hazard at which a supernode's client crashes and restarts"),
];

const STATES: [StateSpec; 3] = [
    StateSpec {
        name: Cow::Borrowed("peers"),
        meaning: Cow::Borrowed("online ordinary peers attached to a supernode (fraction of users)"),
    },
    StateSpec {
        name: Cow::Borrowed("supernodes"),
        meaning: Cow::Borrowed("online peers serving as supernodes (fraction of users)"),
    },
    StateSpec {
        name: Cow::Borrowed("queue"),
        meaning: Cow::Borrowed("clients trying to log in (fraction of users)"),
    },
];

/// Where a user is: one of the three states, or offline (the rest, `1 − N − S − Q`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compartment {
    /// Online ordinary peers, N.
    Peers,
    /// Supernodes, S.
    Supernodes,
    /// The login queue, Q.
    Queue,
    /// Offline users, O (not a state: the rest of the users).
    Offline,
}

impl Compartment {
    /// Position in the state vector `(N, S, Q)`; `None` for offline.
    pub const fn state(self) -> Option<usize> {
        match self {
            Self::Peers => Some(0),
            Self::Supernodes => Some(1),
            Self::Queue => Some(2),
            Self::Offline => None,
        }
    }
}

/// Positions of the reference model's flows in [`P2P_FLOWS`] (and in [`P2pFlows::to_array`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum P2pFlow {
    /// λ·O: offline users start the client and join the queue.
    SignOn,
    /// δ·N: peers leave.
    SignOff,
    /// δs·S: supernodes leave normally.
    SnSignOff,
    /// G = r·Q·s: queued clients log in and become peers.
    Login,
    /// θ·Q: queued clients give up.
    GiveUp,
    /// P = γ·p·N·u: peers are promoted to supernodes.
    Promotion,
    /// φ·S: overloaded supernodes shut down; their clients rejoin the queue.
    Shutdown,
    /// ηc·N: peers' clients crash and restart, back into the queue (revision 3).
    Crash,
    /// ηcs·S: supernodes' clients crash and restart, back into the queue (revision 3).
    SnCrash,
    /// D = φ·S·N/(S + S0): the peers of the supernodes that shut down rejoin the queue.
    Disconnect,
    /// ηcs·S·N/(S + S0): the peers of the supernodes that crash rejoin the queue.
    SnCrashOrphans,
}

/// One flow of the model: its name and symbol, and the compartments it moves users between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowSpec {
    /// Name (snake case, as the parameters').
    pub name: &'static str,
    /// The flow in the notation of docs/model.md.
    pub symbol: &'static str,
    /// Where the flow takes users from.
    pub from: Compartment,
    /// Where it puts them.
    pub to: Compartment,
}

impl FlowSpec {
    /// The change of the state `(N, S, Q)` when one user moves along the flow: −1 at `from`, +1
    /// at `to` (nothing for offline, which is not a state).
    pub fn jump(&self) -> [i8; 3] {
        let mut v = [0; 3];
        if let Some(i) = self.from.state() {
            v[i] -= 1;
        }
        if let Some(i) = self.to.state() {
            v[i] += 1;
        }
        v
    }
}

const fn flow(
    name: &'static str,
    symbol: &'static str,
    from: Compartment,
    to: Compartment,
) -> FlowSpec {
    FlowSpec {
        name,
        symbol,
        from,
        to,
    }
}

/// The stoichiometry of the reference model, in [`P2pFlow`] order: every flow moves users from
/// one compartment to another, so `N + S + Q + O` is conserved. The Markov chain of
/// [`crate::stochastic`] moves its users along this table.
#[rustfmt::skip]
pub const P2P_FLOWS: [FlowSpec; 11] = {
    use Compartment::*;
    [
        flow("sign_on", "λ·O", Offline, Queue),
        flow("sign_off", "δ·N", Peers, Offline),
        flow("sn_sign_off", "δs·S", Supernodes, Offline),
        flow("login", "G = r·Q·s", Queue, Peers),
        flow("give_up", "θ·Q", Queue, Offline),
        flow("promotion", "P = γ·p·N·u", Peers, Supernodes),
        flow("shutdown", "φ·S", Supernodes, Queue),
        flow("crash", "ηc·N", Peers, Queue),
        flow("sn_crash", "ηcs·S", Supernodes, Queue),
        flow("disconnect", "D = φ·S·N/(S + S0)", Peers, Queue),
        flow("sn_crash_orphans", "ηcs·S·N/(S + S0)", Peers, Queue),
    ]
};

/// The flows of the reference model at one state, each a rate per minute, non-negative in the
/// feasible region (see [`P2P_FLOWS`] for what each moves where).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct P2pFlows<T> {
    /// λ·O.
    pub sign_on: T,
    /// δ·N.
    pub sign_off: T,
    /// δs·S.
    pub sn_sign_off: T,
    /// G = r·Q·s.
    pub login: T,
    /// θ·Q.
    pub give_up: T,
    /// P = γ·p·N·u.
    pub promotion: T,
    /// φ·S.
    pub shutdown: T,
    /// ηc·N.
    pub crash: T,
    /// ηcs·S.
    pub sn_crash: T,
    /// D = φ·S·N/(S + S0).
    pub disconnect: T,
    /// ηcs·S·N/(S + S0).
    pub sn_crash_orphans: T,
}

impl<T: Copy> P2pFlows<T> {
    /// The flows in [`P2pFlow`] order.
    pub fn to_array(&self) -> [T; 11] {
        [
            self.sign_on,
            self.sign_off,
            self.sn_sign_off,
            self.login,
            self.give_up,
            self.promotion,
            self.shutdown,
            self.crash,
            self.sn_crash,
            self.disconnect,
            self.sn_crash_orphans,
        ]
    }
}

/// The sizes the flows are proportional to, in the unit the flows are wanted in: the fractions
/// themselves for the fluid model, counts of users (and `S0·M`) for the Markov chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizes<T> {
    pub peers: T,
    pub supernodes: T,
    pub queue: T,
    pub offline: T,
    /// The dedicated capacity S0 in the same unit.
    pub dedicated: T,
}

impl<T: Scalar> Sizes<T> {
    /// The fluid model's sizes: the fractions of the state themselves (offline the rest).
    #[inline(always)]
    fn fluid(x: &SVector<T, 3>, p: &[T]) -> Self {
        let (n, s, q) = (x[0], x[1], x[2]);
        Self {
            peers: n,
            supernodes: s,
            queue: q,
            offline: T::from(1.0) - n - s - q,
            dedicated: p[P2pIdx::Dedicated as usize],
        }
    }
}

/// The rate law of the model. Every flow is a size times a per-capita rate that depends on the
/// state only through the fractions `x` (the switches s, φ and u, and for disconnects the share
/// of the capacity a supernode is), so the flows are linear in `sizes`: with counts of `M` users
/// they are exactly `M` times the fluid flows at `x`, without the rounding of scaling back.
/// `sizes` must describe the state `x`.
#[inline(always)]
pub(crate) fn flows_in<T: Scalar>(x: &SVector<T, 3>, sizes: &Sizes<T>, p: &[T]) -> P2pFlows<T> {
    flows_and_switches(x, sizes, p).0
}

/// The three switches of the rate law at one state, each as the pair `(h, 1 − h)` that
/// [`hill_ratio`] returns (both computed without cancellation).
#[derive(Debug, Clone, Copy)]
struct Switches<T> {
    /// `(ρ^m/(1+ρ^m), s)`: login success `s` is the second.
    success: (T, T),
    /// `(φ/φ0, 1 − φ/φ0)`.
    over: (T, T),
    /// `((S/(σN))^k/(1+(S/(σN))^k), u)`: the promotion switch `u` is the second.
    need: (T, T),
    /// Load `a·N + r·Q`.
    load: T,
    /// `S + S0`.
    sn_total: T,
}

/// [`flows_in`] together with the switches it computed on the way (what the closed-form
/// Jacobian differentiates).
#[inline(always)]
fn flows_and_switches<T: Scalar>(
    x: &SVector<T, 3>,
    sizes: &Sizes<T>,
    p: &[T],
) -> (P2pFlows<T>, Switches<T>) {
    use P2pIdx::*;
    let g = |i: P2pIdx| p[i as usize];
    let re = |i: P2pIdx| p[i as usize].re();
    let (n, s, q) = (x[0], x[1], x[2]);

    let load = g(PeerLoad) * n + g(Retry) * q;
    let sn_total = s + g(Dedicated);
    let cap = g(SnCapacity) * sn_total;
    // s = 1/(1+ρ^m); φ/φ0 = ρ^n/(ρc^n+ρ^n) = (ρ/ρc)^n/(1+(ρ/ρc)^n).
    let success_pair = hill_ratio(load, cap, re(SuccessSteepness));
    let over_pair = hill_ratio(load, cap * g(OverloadThreshold), re(OverloadSteepness));
    let (success, over) = (success_pair.1, over_pair.0);
    let phi = g(OverloadRate) * over;
    // u = 1/(1+(S/(σN))^k); σN = 0 reads as an infinite ratio (u = 0).
    let need_pair = hill_ratio(s, g(SnRatio) * n, re(NeedSteepness));
    let need = need_pair.1;
    let shutdown = phi * sizes.supernodes;
    let sn_crash = g(SnCrash) * sizes.supernodes;
    // The peers of the supernodes that go down: each carries N/(S + S0), so a hazard η on the
    // supernodes orphans η·N·w peers, w = S/(S + S0) the users' share of the capacity (so
    // written, the derivative in S does not cancel two terms of size η·N·S/(S + S0)², which
    // lost five digits with S0 = 0 and a tiny S). S + S0 below the smallest normal number
    // counts as 0 (D = 0, docs/model.md): dividing by it would overflow the derivative.
    let user_share = if sn_total.re() >= f64::MIN_POSITIVE {
        sizes.supernodes / (sizes.supernodes + sizes.dedicated)
    } else {
        T::from(0.0)
    };
    let disconnect = phi * sizes.peers * user_share;
    let sn_crash_orphans = g(SnCrash) * sizes.peers * user_share;
    let flows = P2pFlows {
        sign_on: g(SignOn) * sizes.offline,
        sign_off: g(SignOff) * sizes.peers,
        sn_sign_off: g(SnSignOff) * sizes.supernodes,
        login: g(Retry) * sizes.queue * success,
        give_up: g(GiveUp) * sizes.queue,
        promotion: g(Promotion) * g(Eligible) * sizes.peers * need,
        shutdown,
        crash: g(Crash) * sizes.peers,
        sn_crash,
        disconnect,
        sn_crash_orphans,
    };
    let switches = Switches {
        success: success_pair,
        over: over_pair,
        need: need_pair,
        load,
        sn_total,
    };
    (flows, switches)
}

/// The stoichiometry of [`P2P_FLOWS`]: each derivative is the flows into its state minus the
/// flows out of it (offline is the rest, `1 − N − S − Q`). Linear in the flows, so it maps
/// their gradients to the rows of the Jacobian as it maps their values to `f`.
#[inline(always)]
fn net<V: Copy + std::ops::Add<Output = V> + std::ops::Sub<Output = V>>(f: &P2pFlows<V>) -> [V; 3] {
    // Crashes (revision 3, zero by default) move clients and orphans back to the queue.
    let crashes = f.crash + f.sn_crash_orphans;
    let dn = f.login - f.sign_off - f.disconnect - f.promotion - crashes;
    let ds = f.promotion - f.sn_sign_off - f.shutdown - f.sn_crash;
    let dq = f.sign_on + f.disconnect + f.shutdown - f.login - f.give_up + crashes + f.sn_crash;
    [dn, ds, dq]
}

/// `f` and its Jacobian in closed form at an interior state: every switch's ratio strictly
/// between zero and infinity and some supernode capacity (`S + S0` normal). `None` elsewhere
/// (a population at zero, no capacity, a non-finite result), where the forward-mode pass with
/// the rate law's guarded edge cases is used instead.
///
/// A Hill switch `h = z^m/(1+z^m)` of a ratio `z = num/den` has
/// `dh = m·h·(1 − h)·(dnum/num − dden/den)`, with `h` and `1 − h` as the rate law computed
/// them.
fn closed_form_jacobian(
    x: &SVector<f64, 3>,
    p: &[f64],
) -> Option<(SVector<f64, 3>, SMatrix<f64, 3, 3>)> {
    use P2pIdx::*;
    let g = |i: P2pIdx| p[i as usize];
    let (n, s, q) = (x[0], x[1], x[2]);
    let (f, sw) = flows_and_switches(x, &Sizes::fluid(x, p), p);
    let positive = |v: f64| v >= f64::MIN_POSITIVE && v.is_finite();
    if !(positive(sw.load) && positive(sw.sn_total) && positive(s) && positive(n)) {
        return None;
    }
    let cap = g(SnCapacity) * sw.sn_total;
    let need_den = g(SnRatio) * n;
    if !(positive(cap) && positive(cap * g(OverloadThreshold)) && positive(need_den)) {
        return None;
    }
    let v = |a: f64, b: f64, c: f64| SVector::<f64, 3>::new(a, b, c);
    // d ln(load) − d ln(capacity): the ratio ρ's log-gradient, shared by two switches.
    let dln_rho = v(g(PeerLoad), 0.0, g(Retry)) / sw.load - v(0.0, 1.0 / sw.sn_total, 0.0);
    let hill = |(h, c): (f64, f64), m: f64| m * h * c;
    // s = 1 − h_success falls as ρ rises; φ/φ0 rises; u = 1 − h_need falls as S/(σN) rises.
    let d_success = dln_rho * -hill(sw.success, g(SuccessSteepness));
    let d_over = dln_rho * hill(sw.over, g(OverloadSteepness));
    let d_need = v(-1.0 / n, 1.0 / s, 0.0) * -hill(sw.need, g(NeedSteepness));
    let e = |i: usize| SVector::<f64, 3>::from_fn(|r, _| if r == i { 1.0 } else { 0.0 });
    let (en, es, eq) = (e(0), e(1), e(2));
    let phi = g(OverloadRate) * sw.over.0;
    let d_phi = d_over * g(OverloadRate);
    // w = S/(S + S0), the users' share of the capacity, and the orphans' N·w.
    let w = s / sw.sn_total;
    let d_nw = en * w + es * (n * g(Dedicated) / (sw.sn_total * sw.sn_total));
    let grads = P2pFlows {
        sign_on: -(en + es + eq) * g(SignOn),
        sign_off: en * g(SignOff),
        sn_sign_off: es * g(SnSignOff),
        login: eq * (g(Retry) * sw.success.1) + d_success * (g(Retry) * q),
        give_up: eq * g(GiveUp),
        promotion: (en * sw.need.1 + d_need * n) * (g(Promotion) * g(Eligible)),
        shutdown: es * phi + d_phi * s,
        crash: en * g(Crash),
        sn_crash: es * g(SnCrash),
        disconnect: d_phi * (n * w) + d_nw * phi,
        sn_crash_orphans: d_nw * g(SnCrash),
    };
    let value = SVector::from(net(&f));
    let rows = net(&grads);
    let j = SMatrix::<f64, 3, 3>::from_fn(|r, c| rows[r][c]);
    (value.iter().chain(j.iter()).all(|v| v.is_finite())).then_some((value, j))
}

/// The reference model of docs/model.md: state `(peers, supernodes, queue)`, time in minutes,
/// populations as fractions of the user base.
///
/// ```
/// use selfheal::model::{Model, ParamSet, P2p};
/// use nalgebra::SVector;
/// let p = ParamSet::defaults(P2p.params());
/// let x = SVector::from([0.3, 0.001, 0.01]);
/// let dx = P2p.rhs(0.0, &x, p.values());
/// // The four flows sum to zero: d(offline)/dt = -(dN + dS + dQ), and N + S + Q + O = 1.
/// let v = p.values();
/// let o = 1.0 - x.sum();
/// let d_offline = v[1] * x[0] + v[2] * x[1] + v[4] * x[2] - v[0] * o;
/// assert!((dx.sum() + d_offline).abs() < 1e-15);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct P2p;

impl P2p {
    /// The eight flows of the model at the state `x` (fractions of the users, per minute): the
    /// rate law of docs/model.md, written once for the fluid model ([`Model::rhs`] applies the
    /// stoichiometry of [`P2P_FLOWS`] to it) and for the Markov chain of
    /// [`crate::stochastic`] (whose transition rates are `M` times these flows).
    ///
    /// ```
    /// use selfheal::model::{Model, ParamSet, P2p};
    /// use nalgebra::SVector;
    /// let p = ParamSet::defaults(P2p.params());
    /// let x = SVector::from([0.3, 0.001, 0.01]);
    /// let f = P2p::flows(&x, p.values());
    /// // Supernodes gain promotions and lose sign-offs and shutdowns.
    /// let ds = P2p.rhs(0.0, &x, p.values())[1];
    /// assert_eq!(ds, f.promotion - f.sn_sign_off - f.shutdown);
    /// ```
    #[inline(always)]
    pub fn flows<T: Scalar>(x: &SVector<T, 3>, p: &[T]) -> P2pFlows<T> {
        flows_in(x, &Sizes::fluid(x, p), p)
    }

    /// Utilisation ρ = (a·N + r·Q) / (κ·(S + S0)); +∞ without any capacity.
    pub fn utilisation_of(x: &SVector<f64, 3>, p: &[f64]) -> f64 {
        use P2pIdx::*;
        let load = p[PeerLoad as usize] * x[0] + p[Retry as usize] * x[2];
        let cap = p[SnCapacity as usize] * (x[1] + p[Dedicated as usize]);
        if cap <= 0.0 {
            f64::INFINITY
        } else {
            load / cap
        }
    }
}

impl Model<3> for P2p {
    fn name(&self) -> &str {
        "p2p"
    }

    fn states(&self) -> [StateSpec; 3] {
        STATES
    }

    fn fractions(&self) -> bool {
        true
    }

    fn params(&self) -> &[ParamSpec] {
        &P2P_PARAMS
    }

    /// The stoichiometry of [`P2P_FLOWS`] applied to [`P2p::flows`]: each derivative is the flows
    /// into its state minus the flows out of it (offline is the rest, `1 − N − S − Q`).
    fn rhs<T: Scalar>(&self, _t: T, x: &SVector<T, 3>, p: &[T]) -> SVector<T, 3> {
        SVector::from(net(&Self::flows(x, p)))
    }

    /// In closed form at interior states (the forward-mode pass at the edges).
    fn rhs_and_jacobian(
        &self,
        _t: f64,
        x: &SVector<f64, 3>,
        p: &[f64],
    ) -> Option<(SVector<f64, 3>, SMatrix<f64, 3, 3>)> {
        closed_form_jacobian(x, p)
    }

    fn nominal_state(&self, p: &[f64]) -> SVector<f64, 3> {
        use P2pIdx::*;
        let (l, d) = (p[SignOn as usize], p[SignOff as usize]);
        let n = if l + d > 0.0 { l / (l + d) } else { 0.5 };
        let s = (p[SnRatio as usize] * n).min(1.0 - n);
        SVector::from([n, s, 0.0])
    }

    /// Everyone in the login queue: the state a collapse drives the network towards, from
    /// which the flow rests on the collapsed state where there is one (the deflated starts
    /// spread over the box rarely land in its basin when it hugs the face `n + s + q = 1`).
    fn probe_states(&self, _p: &[f64]) -> Vec<SVector<f64, 3>> {
        vec![SVector::from([0.0, 0.0, 1.0])]
    }

    /// By the reduction to the utilisation ρ (a scan of one function of ρ over the range an
    /// equilibrium's ρ can have), where every parameter it divides by is positive.
    fn equilibrium_candidates(&self, p: &[f64]) -> Option<Vec<SVector<f64, 3>>> {
        super::p2p_reduced::candidates(p)
    }

    fn search_box(&self, _p: &[f64]) -> [SearchRange; 3] {
        // Healthy supernodes are ~1e-3 and collapsed ones ~3e-8: sample every population on a
        // log scale down far below both.
        let log = |lo: f64| SearchRange {
            lo,
            hi: 1.0,
            log: true,
        };
        [log(1e-8), log(1e-12), log(1e-10)]
    }

    fn feasible(&self, x: &SVector<f64, 3>, _p: &[f64]) -> bool {
        x.iter().all(|v| *v >= 0.0) && x.sum() <= 1.0
    }

    /// The Euclidean projection onto `{x ≥ 0, Σx ≤ 1}`: negatives clipped; if the rest sums
    /// above 1, the projection onto the face `Σx = 1` (subtract the common shift `τ` that
    /// makes the positive parts sum to 1).
    fn project(&self, x: &SVector<f64, 3>, _p: &[f64]) -> Option<SVector<f64, 3>> {
        if !x.iter().all(|v| v.is_finite()) {
            return None;
        }
        let clipped = x.map(|v| v.max(0.0));
        if clipped.sum() <= 1.0 {
            return Some(clipped);
        }
        // Simplex projection: sort descending, find the largest k with
        // u_k − (Σ_{i≤k} u_i − 1)/k > 0, shift by τ = (Σ_{i≤k} u_i − 1)/k.
        let mut u: Vec<f64> = x.iter().copied().collect();
        u.sort_by(|a, b| b.total_cmp(a));
        let (mut sum, mut tau) = (0.0, 0.0);
        for (k, v) in u.iter().enumerate() {
            sum += v;
            let t = (sum - 1.0) / (k + 1) as f64;
            if v - t > 0.0 {
                tau = t;
            }
        }
        Some(x.map(|v| (v - tau).max(0.0)))
    }

    /// Peers and supernodes are online; the login queue is not.
    fn online<T: Scalar>(&self, x: &SVector<T, 3>) -> T {
        x[0] + x[1]
    }

    /// Online users over the users who want to be online, (N + S)/(N + S + Q); 1 when nobody
    /// wants service (docs/model.md).
    fn service_level(&self, x: &SVector<f64, 3>, _p: &[f64]) -> Option<f64> {
        let online = x[0] + x[1];
        let wanting = online + x[2];
        Some(if wanting > 0.0 { online / wanting } else { 1.0 })
    }

    fn utilisation(&self, x: &SVector<f64, 3>, p: &[f64]) -> Option<f64> {
        Some(Self::utilisation_of(x, p))
    }

    fn extra_columns(&self) -> &[(&'static str, bool)] {
        &[("offline", true), ("utilisation", false)]
    }

    fn extra_values(&self, x: &SVector<f64, 3>, p: &[f64]) -> Vec<f64> {
        vec![1.0 - x.sum(), Self::utilisation_of(x, p)]
    }

    fn reboot_jump<T: Scalar>(
        &self,
        x: &SVector<T, 3>,
        p: &[T],
        f: T,
        c: T,
    ) -> Result<SVector<T, 3>, Error> {
        super::check_wave(f.re(), c.re())?;
        let (n, s, q) = (x[0], x[1], x[2]);
        let sn_total = s + p[P2pIdx::Dedicated as usize];
        let orphaned = if sn_total.re() >= f64::MIN_POSITIVE {
            c * s / sn_total
        } else {
            T::from(0.0)
        };
        let one = T::from(1.0);
        let n1 = (one - f) * (one - orphaned) * n;
        let s1 = (one - c) * s;
        // The queue gains exactly what peers and supernodes lost, so N + S + Q is unchanged.
        let q1 = q + (n - n1) + (s - s1);
        Ok(SVector::from([n1, s1, q1]))
    }

    fn reboot_flow<T: Scalar>(
        &self,
        x: &SVector<T, 3>,
        p: &[T],
        eta_p: T,
        eta_s: T,
    ) -> SVector<T, 3> {
        let (n, s) = (x[0], x[1]);
        let sn_total = s + p[P2pIdx::Dedicated as usize];
        let orphan = if sn_total.re() >= f64::MIN_POSITIVE {
            s * n * eta_s / sn_total
        } else {
            T::from(0.0)
        };
        let peers_down = n * eta_p;
        let sn_down = s * eta_s;
        SVector::from([
            -peers_down - orphan,
            -sn_down,
            peers_down + sn_down + orphan,
        ])
    }
}
