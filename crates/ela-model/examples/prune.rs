//! ELA's decision from your own KL scores: attention weights from the model's forward pass,
//! adjacent-block KL scores (SPEC §3.1) averaged over a few batches, EBQM (SPEC §3.3), and the
//! resulting skip mask applied to the model in place.
//!
//! `cargo run --release -p ela-model --example prune`

use burn::tensor::{Device, Distribution, Tensor};
use ela_model::{AttentionKind, ElaResNetConfig};
use ela_prune::kl::{DEFAULT_EPS, block_scores};
use ela_prune::{EbqmParams, KlDirection, PruneMethod, SkipMask};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    device.seed(2);
    let model = ElaResNetConfig::new(56, 100)
        .with_attention(AttentionKind::MrlaB)
        .init(&device)?;
    let layout = model.layout();
    let mask = SkipMask::from_flags(&layout, model.skip_flags())?;

    // Sum each block's KL score over a few batches (your training loop's window).
    let batches = 3;
    let mut sums = vec![0.0f64; layout.num_blocks()];
    let mut scored = vec![false; layout.num_blocks()];
    for _ in 0..batches {
        let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Default, &device);
        let out = model.forward_with_attention(x);
        let (scores, which) = block_scores(
            &layout,
            &mask,
            &out.attention,
            DEFAULT_EPS,
            KlDirection::PrevToNext,
        )
        .ok_or("no block has a predecessor to compare with")?;
        let values: Vec<f32> = scores
            .into_data()
            .try_to_vec()
            .map_err(|e| format!("{e:?}"))?;
        for (i, v) in values.into_iter().enumerate() {
            sums[i] += f64::from(v);
        }
        scored = which;
    }
    let means: Vec<Option<f64>> = sums
        .iter()
        .zip(&scored)
        .map(|(&s, &ok)| ok.then_some(s / batches as f64))
        .collect();

    // EBQM with the CIFAR values (α 5, β 1, τ 0.3, q 0.5), then the skip mask on the model.
    let decision = PruneMethod::Ebqm(EbqmParams::cifar()).decide(&means)?;
    let mut mask = mask;
    mask.skip(&layout, &decision.skip)?;
    model.set_skip_flags(mask.flags())?;
    println!(
        "quantile {:?}, skipping blocks {:?}",
        decision.quantile,
        mask.skipped_indices()
    );
    Ok(())
}
