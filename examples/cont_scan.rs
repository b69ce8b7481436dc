use selfheal::analysis::continuation::{continue_equilibria, ContinuationOptions};
use selfheal::model::{Model, P2p, ParamSet};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = &args[1];
    let a: f64 = args[2].parse().unwrap();
    let b: f64 = args[3].parse().unwrap();
    let ps = ParamSet::defaults(P2p.params());
    let k = ps.index(name).unwrap();
    let t = std::time::Instant::now();
    let c = continue_equilibria(&P2p, ps.values(), k, a, b, &ContinuationOptions::default());
    let el = t.elapsed();
    match c {
        Ok(c) => {
            for (i, br) in c.branches.iter().enumerate() {
                println!(
                    "branch {i}: {} points, starts {:?}, mu {} .. {}",
                    br.points.len(),
                    br.starts,
                    br.points.first().unwrap().mu,
                    br.points.last().unwrap().mu
                );
            }
            for (b, p) in c.special_points() {
                println!(
                    "  {:?} on {b} at {} x {:?}",
                    p.special,
                    p.mu,
                    p.x.as_slice()
                );
            }
            println!("{} steps in {:.2} ms", c.steps, el.as_secs_f64() * 1e3);
        }
        Err(e) => println!("error {e}"),
    }
}
