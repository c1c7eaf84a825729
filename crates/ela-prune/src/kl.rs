//! Adjacent-block redundancy score: KL divergence between attention distributions (SPEC §3.1).
//!
//! For an active block t whose nearest active predecessor in its stage is s, `p = a_s` covers
//! s's memory entries and `r = a_t` covers t's, a prefix-aligned superset. `p` is padded with ε
//! to `r`'s length, renormalized to `p̃`, and `D_t = KL(p̃ ‖ r)`, averaged over batch and heads.
//! A small `D_t` means block t retrieves what its predecessor already retrieved.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::{SkipMask, StageLayout};

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

/// KL score of one pair of attention tensors, on their device.
///
/// # Shapes
/// - `prev`: `[batch, heads, 1, s]`, `next`: `[batch, heads, 1, t]` with `s ≤ t`
/// - output: `[1]`, the mean over batch and heads
pub fn kl_padded_tensor(
    prev: Tensor<4>,
    next: Tensor<4>,
    eps: f64,
    direction: KlDirection,
) -> Tensor<1> {
    let [batch, heads, one, s] = prev.dims();
    let t = next.dims()[3];
    assert!(
        s <= t,
        "predecessor distribution ({s}) longer than the block's ({t})"
    );
    let padded = if s < t {
        // In the attention's float type, whatever the device's default.
        let pad =
            Tensor::<4>::full([batch, heads, one, t - s], eps, &prev.device()).cast(prev.dtype());
        Tensor::cat(vec![prev, pad], 3)
    } else {
        prev
    };
    let padded = padded.clone() / padded.sum_dim(3);
    let (a, b) = match direction {
        KlDirection::PrevToNext => (padded, next),
        KlDirection::NextToPrev => (next, padded),
    };
    let log_ratio = a.clone().clamp_min(eps).log() - b.clamp_min(eps).log();
    (a * log_ratio).sum_dim(3).mean()
}

/// The redundancy score of every block for one forward pass, on the device.
///
/// `attention[i]` is block i's attention weights `[batch, heads, 1, len_i]` (`None` for a
/// skipped block). Returns a `[num_blocks]` tensor with `D_t` for every scored block (an active
/// block with an active predecessor in its stage) and 0 elsewhere, and which blocks are scored.
/// Which blocks are scored depends only on the layout and the mask, so a caller may sum the
/// tensor over many batches and read it back once.
///
/// Returns `None` when no block can be scored (every stage has a single active block).
pub fn block_scores(
    layout: &StageLayout,
    mask: &SkipMask,
    attention: &[Option<Tensor<4>>],
    eps: f64,
    direction: KlDirection,
) -> Option<(Tensor<1>, Vec<bool>)> {
    let predecessors = layout.active_predecessors(mask);
    let scored: Vec<bool> = predecessors.iter().map(Option::is_some).collect();
    if !scored.contains(&true) {
        return None;
    }
    let first = attention.iter().flatten().next()?;
    let (device, dtype) = (first.device(), first.dtype());
    let parts: Vec<Tensor<1>> = predecessors
        .iter()
        .enumerate()
        .map(
            |(t, pred)| match (pred, attention.get(t).and_then(Option::as_ref)) {
                (Some(s), Some(next)) => {
                    let prev = attention[*s]
                        .clone()
                        .expect("an active predecessor always has attention weights");
                    kl_padded_tensor(prev, next.clone(), eps, direction)
                }
                _ => Tensor::<1>::zeros([1], &device).cast(dtype),
            },
        )
        .collect();
    Some((Tensor::cat(parts, 0), scored))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    fn close(a: f64, b: f64, tol: f64) -> bool {
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
    const P: [f64; 3] = [0.32197805434378557, 0.43354637698423104, 0.2444755686719834];
    const R: [f64; 4] = [
        0.16562098327722477,
        0.25611408714625655,
        0.14970208636405816,
        0.42856284321246046,
    ];
    const KL_PN: f64 = 0.5621606352757238;
    const KL_NP: f64 = 7.212952240615985;
    const KL_1_PN: f64 = 0.5108254336138365;
    const KL_1_NP: f64 = 6.695260636571691;

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

    fn tensor(values: &[f64], shape: [usize; 4], device: &Device) -> Tensor<4> {
        let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    #[test]
    fn tensor_kl_averages_the_host_kl_over_batch_and_heads() {
        let device = Device::flex();
        // batch 2, heads 1: sample 0 is the golden pair, sample 1 the trivial pair padded from 1.
        let mut prev = P.to_vec();
        prev.extend([0.6, 0.4, 0.0]);
        let prev = tensor(&prev, [2, 1, 1, 3], &device);
        let mut next = R.to_vec();
        next.extend([0.6, 0.4, 0.0, 0.0]);
        let next = tensor(&next, [2, 1, 1, 4], &device);
        let expected = 0.5
            * (kl_padded(&P, &R, 1e-8, KlDirection::PrevToNext)
                + kl_padded(
                    &[0.6, 0.4, 0.0],
                    &[0.6, 0.4, 0.0, 0.0],
                    1e-8,
                    KlDirection::PrevToNext,
                ));
        let got: f32 = kl_padded_tensor(prev, next, 1e-8, KlDirection::PrevToNext).into_scalar();
        assert!(close(got as f64, expected, 1e-5), "{got} vs {expected}");
    }

    #[test]
    fn block_scores_compare_with_the_nearest_active_predecessor() {
        let device = Device::flex();
        let layout = StageLayout::new(vec![3]).unwrap();
        let mask = SkipMask::from_indices(&layout, &[1]).unwrap();
        // full mode: block 2's memory holds blocks 0 and 2 only.
        let a0 = tensor(&[1.0], [1, 1, 1, 1], &device);
        let a2 = tensor(&[0.6, 0.4], [1, 1, 1, 2], &device);
        let (scores, scored) = block_scores(
            &layout,
            &mask,
            &[Some(a0), None, Some(a2)],
            1e-8,
            KlDirection::PrevToNext,
        )
        .unwrap();
        assert_eq!(scored, vec![false, false, true]);
        let v: Vec<f32> = scores.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(v[0], 0.0);
        assert_eq!(v[1], 0.0);
        assert!(close(v[2] as f64, KL_1_PN, 1e-5));
    }
}
