//! Quasi-random and hashed numbers as pure functions of their indices: the Sobol' sequence
//! (Joe–Kuo direction numbers, with a seeded digital shift), a seeded bijection of `[0, n)`, and
//! a 64-bit mixing hash. Utility layer: sweeps sample with them and calibration spreads its
//! starts with them; the same index always gives the same number, on any thread or shard.
//!
//! The generator is ours rather than a crate's: it is unscrambled apart from the digital
//! shift, so its points are the published sequence (tested below as a (0, m, 2)-net), and
//! every point is computed from its index alone.

/// Most dimensions the Sobol' sampler supports.
pub const SOBOL_DIMS: usize = 12;

/// SplitMix64 finaliser: a well-mixed 64-bit hash.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of three words.
pub fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix(mix(mix(a) ^ b) ^ c)
}

/// A uniform number in [0, 1) from 53 bits of a hash.
pub fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A seeded stream of uniform numbers in [0, 1) (SplitMix64 through [`mix`]): reproducible
/// random draws for tests and examples (e.g. [`crate::model::ParamSet::random_near`]).
#[derive(Debug, Clone)]
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> f64 {
        let z = mix(self.0);
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        unit(z)
    }
}

/// A seeded bijection of `[0, n)` evaluated at `i`, in O(1) memory: an invertible mixing of the
/// smallest power-of-two domain, walked until it lands inside `[0, n)`.
pub fn permute(i: u64, n: u64, seed: u64) -> u64 {
    let bits = 64 - (n.max(2) - 1).leading_zeros();
    let mask = if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut x = i;
    loop {
        // Each round is a bijection on `bits`-bit integers.
        for r in 0..4u64 {
            let k = mix(seed ^ r) & mask;
            x ^= k;
            x = x.wrapping_mul(mix(seed.wrapping_add(r)) | 1) & mask;
            x ^= (x >> (bits / 2).max(1)) & mask;
        }
        if x < n {
            return x;
        }
    }
}

/// Primitive polynomials (degree s, coefficients a) and initial direction numbers of the
/// Sobol' sequence for dimensions 2.. (Joe & Kuo, "new-joe-kuo-6.21201").
const SOBOL_POLY: [(u32, u32, [u32; 5]); SOBOL_DIMS - 1] = [
    (1, 0, [1, 0, 0, 0, 0]),
    (2, 1, [1, 3, 0, 0, 0]),
    (3, 1, [1, 3, 1, 0, 0]),
    (3, 2, [1, 1, 1, 0, 0]),
    (4, 1, [1, 1, 3, 3, 0]),
    (4, 4, [1, 3, 5, 13, 0]),
    (5, 2, [1, 1, 5, 5, 17]),
    (5, 4, [1, 1, 5, 5, 5]),
    (5, 7, [1, 1, 7, 11, 19]),
    (5, 11, [1, 1, 5, 1, 1]),
    (5, 13, [1, 1, 1, 3, 11]),
];

/// The 32 direction numbers of dimension `d` (from 0), as 32-bit fractions.
fn directions(d: usize) -> [u32; 32] {
    let mut v = [0u32; 32];
    if d == 0 {
        for (k, vk) in v.iter_mut().enumerate() {
            *vk = 1u32 << (31 - k);
        }
        return v;
    }
    let (s, a, m) = SOBOL_POLY[d - 1];
    let s = s as usize;
    for k in 0..s {
        v[k] = m[k] << (31 - k);
    }
    for k in s..32 {
        let mut x = v[k - s] ^ (v[k - s] >> s);
        for j in 1..s {
            if (a >> (s - 1 - j)) & 1 == 1 {
                x ^= v[k - j];
            }
        }
        v[k] = x;
    }
    v
}

/// Point `i` of the Sobol' sequence in dimension `d`, with a seeded digital shift.
pub fn sobol(i: u64, d: usize, seed: u64) -> f64 {
    let v = directions(d);
    let mut x = 0u32;
    let mut bits = i;
    let mut k = 0;
    while bits > 0 && k < 32 {
        if bits & 1 == 1 {
            x ^= v[k];
        }
        bits >>= 1;
        k += 1;
    }
    let shift = if seed == 0 {
        0
    } else {
        hash3(seed, d as u64, 0x50b) as u32
    };
    (x ^ shift) as f64 / 4_294_967_296.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sobol_points_stratify_every_dimension() {
        // The first 2^m points of each dimension hit every interval [j/2^m, (j+1)/2^m) once.
        for d in 0..SOBOL_DIMS {
            for m in [4u32, 8] {
                let n = 1usize << m;
                let mut seen = vec![false; n];
                for i in 0..n {
                    let cell = (sobol(i as u64, d, 0) * n as f64) as usize;
                    assert!(!seen[cell], "dimension {d}, m {m}: cell {cell} twice");
                    seen[cell] = true;
                }
            }
        }
        // Dimensions 0 and 1 form a (0, m, 2)-net: one point in every 2^a × 2^(m−a) box.
        let m = 6;
        let n = 1usize << m;
        for a in 0..=m {
            let mut seen = vec![false; n];
            for i in 0..n {
                let x = (sobol(i as u64, 0, 0) * (1 << a) as f64) as usize;
                let y = (sobol(i as u64, 1, 0) * (1 << (m - a)) as f64) as usize;
                let cell = x * (1 << (m - a)) + y;
                assert!(!seen[cell]);
                seen[cell] = true;
            }
        }
    }

    #[test]
    fn permutation_is_a_bijection() {
        for n in [1u64, 2, 7, 100, 1000] {
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let p = permute(i, n, 42) as usize;
                assert!(!seen[p]);
                seen[p] = true;
            }
        }
    }
}
