use selfheal::analysis::equilibria::all_equilibria;
use selfheal::model::{Model, P2p, ParamSet};
fn main() {
    let mut ps = ParamSet::defaults(P2p.params());
    let mut bad = 0;
    let t = std::time::Instant::now();
    let n = 200;
    for i in 0..n {
        let k = 540.0 * (8300.0f64 / 540.0).powf(i as f64 / (n - 1) as f64);
        ps.set("sn_capacity", k).unwrap();
        let eq = all_equilibria(&P2p, ps.values()).unwrap();
        if eq.len() != 3 {
            bad += 1;
            println!("k={k} found {}", eq.len());
        }
    }
    println!(
        "{bad} bad; {:.3} ms each",
        t.elapsed().as_secs_f64() * 1e3 / n as f64
    );
}
