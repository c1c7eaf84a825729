//! The KL score of SPEC §3.1 on the training device: one pair of attention tensors, and every
//! block of one forward pass at once (what the training loop sums over a window's batches).

use burn::tensor::Tensor;

use crate::kl::KlDirection;
use crate::{SkipMask, StageLayout};

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
    use crate::kl::kl_padded;
    use crate::kl::tests::*;
    use burn::tensor::{Device, TensorData};

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
