//! The forward pass of [`ElaResNet`]: stem, stages with their attention (MRLA-B retrieval from
//! the stage memory, MRLA-L, DIA, RLA's recurrent state, BAM, the non-local block) and ELA skip
//! flags, then either the classifier head
//! (logits) or every stage's output (a detector's backbone features).

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::baselines::pool_state;
use crate::{AttentionKind, ElaResNet, ForwardOutput, ResBlock, SkipMode};

/// Every stage's output and, when asked for, each block's attention weights.
#[derive(Debug, Clone)]
pub struct FeatureOutput {
    /// One `[batch, C, H, W]` map per stage, in order.
    pub stages: Vec<Tensor<4>>,
    /// As [`ForwardOutput::attention`].
    pub attention: Vec<Option<Tensor<4>>>,
    /// RLA: the recurrent state after the last block.
    pub state: Option<Tensor<4>>,
}

impl ElaResNet {
    /// Logits.
    ///
    /// # Shapes
    /// - x: `[batch, in_channels, H, W]` → `[batch, num_classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_impl(x, false).logits
    }

    /// Logits and every attending block's attention weights, detached: reading them adds no
    /// autodiff work, and [`forward`](Self::forward) does not compute them at all.
    pub fn forward_with_attention(&self, x: Tensor<4>) -> ForwardOutput {
        self.forward_impl(x, true)
    }

    /// Every stage's output (C2–C5 of an ImageNet ResNet, strides 4, 8, 16, 32; after BAM where
    /// the model has it) and, when `collect`, every attending block's weights, detached: the
    /// backbone of a detector.
    pub fn forward_features(&self, x: Tensor<4>, collect: bool) -> FeatureOutput {
        let flags = self.skip_flags();
        let (attention_kind, skip_mode) = (self.attention(), self.skip_mode());
        let x = match &self.stem {
            Some(stem) => stem.forward(x),
            None => x,
        };
        let mut x = relu(self.bn1.forward(self.conv1.forward(x)));
        if let Some(pool) = &self.maxpool {
            x = pool.forward(x);
        }
        let mut attention = Vec::with_capacity(flags.len());
        let mut stages = Vec::with_capacity(4);
        let mut index = 0;
        // RLA's state starts at zero after the stem and runs through every stage.
        let mut rla_state = self.rla.first().map(|r| {
            let [b, _, h, w] = x.dims();
            Tensor::zeros([b, r.state_channels(), h, w], &x.device())
        });
        for (s, stage) in self.stages().into_iter().enumerate() {
            // The stage memory resets at each stage: C, H and W change.
            let mut keys: Vec<Tensor<3>> = Vec::new();
            let mut values: Vec<Tensor<4>> = Vec::new();
            let mut dia_state = None;
            for (j, block) in stage.iter().enumerate() {
                let (out, identity) = match (self.dia.get(s), self.rla.get(s)) {
                    (Some(cell), _) => {
                        let (u, identity) = block.branch(x);
                        let state = dia_state
                            .take()
                            .unwrap_or_else(|| cell.zero_state(u.dims()[0], &u.device()));
                        let (u, state) = cell.forward(u, state);
                        dia_state = Some(state);
                        (relu(u + identity.clone()), identity)
                    }
                    (None, Some(rla)) => {
                        let state = rla_state.take().expect("RLA carries its state");
                        let (y, identity) = block.branch_with_state(x, Some(state.clone()));
                        let state = if downsamples(block) {
                            pool_state(state)
                        } else {
                            state
                        };
                        rla_state = Some(rla.update(j, y.clone(), state));
                        (relu(y + identity.clone()), identity)
                    }
                    (None, None) => block.residual(x),
                };
                let skipped = flags[index];
                index += 1;
                let mut weights = None;
                x = match (attention_kind, block.mrla.as_ref()) {
                    (AttentionKind::MrlaL, Some(_)) => block.add_light(out, identity),
                    (AttentionKind::MrlaB, Some(mrla)) => {
                        if skipped && skip_mode == SkipMode::Full {
                            out
                        } else {
                            let y = mrla.descriptor(out.clone());
                            keys.push(mrla.key(y.clone()));
                            values.push(mrla.value(out.clone()));
                            if skipped {
                                out
                            } else {
                                let (o, a) = mrla.retrieve(mrla.query(y), &keys, &values);
                                if collect {
                                    weights = Some(a.detach());
                                }
                                block.add_retrieved(out, o)
                            }
                        }
                    }
                    _ => out,
                };
                if let Some(nl) = &block.nonlocal {
                    x = nl.forward(x);
                }
                attention.push(weights);
            }
            if let Some(bam) = self.bam.get(s) {
                x = bam.forward(x);
            }
            stages.push(x.clone());
        }
        FeatureOutput {
            stages,
            attention,
            state: rla_state,
        }
    }

    fn forward_impl(&self, x: Tensor<4>, collect: bool) -> ForwardOutput {
        let FeatureOutput {
            mut stages,
            attention,
            state,
        } = self.forward_features(x, collect);
        let x = stages.pop().expect("a ResNet has stages");
        // RLA's classifier reads [x; ReLU(BN(h))].
        let x = match (state, &self.rla_norm) {
            (Some(h), Some(bn)) => Tensor::cat(vec![x, relu(bn.forward(h))], 1),
            _ => x,
        };
        let [batch, channels, _, _] = x.dims();
        let pooled = x.mean_dim(3).mean_dim(2).reshape([batch, channels]);
        ForwardOutput {
            logits: self.fc.forward(pooled),
            attention,
        }
    }
}

/// Whether a block halves the resolution (RLA pools its state there).
fn downsamples(block: &ResBlock) -> bool {
    block.downsample.is_some() && block.stride() != 1
}
