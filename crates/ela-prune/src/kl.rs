//! Adjacent-block redundancy score: KL divergence between attention distributions (SPEC §3.1).
//!
//! For an active block t whose nearest active predecessor in its stage is s, `p = a_s` covers
//! s's memory entries and `r = a_t` covers t's, a prefix-aligned superset. `p` is padded with ε
//! to `r`'s length, renormalized to `p̃`, and `D_t = KL(p̃ ‖ r)`, averaged over batch and heads.
//! A small `D_t` means block t retrieves what its predecessor already retrieved.

use serde::{Deserialize, Serialize};

/// Default padding value ε for the predecessor's distribution.
pub const DEFAULT_EPS: f64 = 1e-8;

/// Which way round the divergence is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KlDirection {
    /// `KL(p̃_prev ‖ r_next)` (default, *ours*): finite wherever the next block puts new weight
    /// on its newest memory entry.
    #[default]
    PrevToNext,
    /// `KL(r_next ‖ p̃_prev)`: the reverse direction, large when the next block leans on entries
    /// the predecessor could not see (they only carry ε mass in `p̃`).
    NextToPrev,
}

impl std::str::FromStr for KlDirection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "prev-to-next" => Ok(Self::PrevToNext),
            "next-to-prev" => Ok(Self::NextToPrev),
            _ => Err(format!(
                "unknown KL direction '{s}' (expected prev-to-next or next-to-prev)"
            )),
        }
    }
}

/// KL score of one pair of distributions, on the host.
///
/// `prev` (length s) is padded with `eps` to `next`'s length, renormalized, and compared with
/// `next` in the chosen direction. Probabilities are clamped to at least `eps` inside the
/// logarithm so that an entry that underflowed to 0 gives a large finite score, never NaN.
///
/// # Panics
/// If `prev` is longer than `next` (the predecessor's memory is a prefix of the block's).
pub fn kl_padded(prev: &[f64], next: &[f64], eps: f64, direction: KlDirection) -> f64 {
    assert!(
        prev.len() <= next.len(),
        "predecessor distribution ({}) longer than the block's ({})",
        prev.len(),
        next.len()
    );
    let mut padded: Vec<f64> = prev.to_vec();
    padded.resize(next.len(), eps);
    let total: f64 = padded.iter().sum();
    padded.iter_mut().for_each(|p| *p /= total);
    let (a, b) = match direction {
        KlDirection::PrevToNext => (&padded[..], next),
        KlDirection::NextToPrev => (next, &padded[..]),
    };
    a.iter()
        .zip(b)
        .map(|(&x, &y)| x * (x.max(eps).ln() - y.max(eps).ln()))
        .sum()
}

#[cfg(feature = "tensor")]
pub use crate::kl_tensor::{block_scores, kl_padded_tensor};

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + b.abs())
    }

    #[test]
    fn kl_is_zero_for_identical_maps() {
        let p = [0.2, 0.3, 0.5];
        assert!(kl_padded(&p, &p, DEFAULT_EPS, KlDirection::PrevToNext).abs() < 1e-12);
        assert!(kl_padded(&p, &p, DEFAULT_EPS, KlDirection::NextToPrev).abs() < 1e-12);
    }

    #[test]
    fn kl_stays_finite_when_next_underflows() {
        let d = kl_padded(&[1.0], &[1.0, 0.0], 1e-8, KlDirection::NextToPrev);
        assert!(d.is_finite() && d.abs() < 1e-6);
        let d = kl_padded(&[0.5, 0.5], &[1.0, 0.0, 0.0], 1e-8, KlDirection::PrevToNext);
        assert!(d.is_finite() && d > 1.0);
    }

    // Golden values from an independent NumPy computation (numpy 2.4.6), run once:
    //
    //   import numpy as np
    //   def kl(p, r, eps=1e-8, direction="prev-to-next"):
    //       p = np.concatenate([p, np.full(len(r) - len(p), eps)]); p = p / p.sum()
    //       a, b = (p, r) if direction == "prev-to-next" else (r, p)
    //       return float(np.sum(a * (np.log(np.maximum(a, eps)) - np.log(np.maximum(b, eps)))))
    //   rng = np.random.default_rng(7)
    //   sm = lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    //   p, r = sm(rng.normal(size=3)), sm(rng.normal(size=4))
    //   print(p, r, kl(p, r), kl(p, r, direction="next-to-prev"))
    //   print(kl(np.array([1.0]), np.array([0.6, 0.4])), kl(np.array([1.0]), np.array([0.6, 0.4]), direction="next-to-prev"))
    pub(crate) const P: [f64; 3] = [0.32197805434378557, 0.43354637698423104, 0.2444755686719834];
    pub(crate) const R: [f64; 4] = [
        0.16562098327722477,
        0.25611408714625655,
        0.14970208636405816,
        0.42856284321246046,
    ];
    pub(crate) const KL_PN: f64 = 0.5621606352757238;
    pub(crate) const KL_NP: f64 = 7.212952240615985;
    pub(crate) const KL_1_PN: f64 = 0.5108254336138365;
    pub(crate) const KL_1_NP: f64 = 6.695260636571691;

    #[test]
    fn kl_matches_numpy_golden_values() {
        let dir = KlDirection::PrevToNext;
        assert!(close(kl_padded(&P, &R, 1e-8, dir), KL_PN, 1e-12));
        let dir = KlDirection::NextToPrev;
        assert!(close(kl_padded(&P, &R, 1e-8, dir), KL_NP, 1e-12));
        assert!(close(
            kl_padded(&[1.0], &[0.6, 0.4], 1e-8, KlDirection::PrevToNext),
            KL_1_PN,
            1e-12
        ));
        assert!(close(
            kl_padded(&[1.0], &[0.6, 0.4], 1e-8, KlDirection::NextToPrev),
            KL_1_NP,
            1e-12
        ));
    }
}
