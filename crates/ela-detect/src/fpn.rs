//! Feature Pyramid Network (Lin et al. 2017) as MMDetection's `FPN(in_channels=[256, 512, 1024,
//! 2048], out_channels=256, num_outs=5)` and torchvision's `FeaturePyramidNetwork` +
//! `LastLevelMaxPool` build it: 1×1 lateral convolutions, top-down nearest upsampling to the
//! finer map's size, 3×3 output convolutions, and P6 = max-pool (kernel 1, stride 2) of P5.

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::module::{interpolate, max_pool2d};
use burn::tensor::ops::{InterpolateMode, InterpolateOptions, MaxPoolOptions};

use crate::init::{Init, conv};

/// The pyramid's configuration.
#[derive(Config, Debug)]
pub struct FpnConfig {
    /// Channels of C2–C5 (ResNet-50: 256, 512, 1024, 2048).
    pub in_channels: Vec<usize>,
    /// Channels of every output level (256).
    pub out_channels: usize,
}

impl FpnConfig {
    /// Xavier-uniform convolutions with zero bias.
    pub fn init(&self, device: &Device) -> Fpn {
        let out = self.out_channels;
        Fpn {
            lateral: self
                .in_channels
                .iter()
                .map(|&c| conv([c, out], 1, Init::Xavier, device))
                .collect(),
            output: self
                .in_channels
                .iter()
                .map(|_| conv([out, out], 3, Init::Xavier, device))
                .collect(),
        }
    }
}

/// The pyramid's convolutions.
#[derive(Module, Debug)]
pub struct Fpn {
    /// 1×1, C_i → out (MMDetection `lateral_convs`, torchvision `inner_blocks`).
    pub lateral: Vec<Conv2d>,
    /// 3×3, out → out (MMDetection `fpn_convs`, torchvision `layer_blocks`).
    pub output: Vec<Conv2d>,
}

impl Fpn {
    /// P2–P6 from C2–C5 (one more level than given: the coarsest output max-pooled).
    ///
    /// # Shapes
    /// - `features[l]`: `[batch, in_channels[l], h_l, w_l]`, each level half the size of the one
    ///   before
    /// - output `[l]` for l < L: `[batch, out_channels, h_l, w_l]`; the last, `[batch,
    ///   out_channels, ⌈h_L / 2⌉, ⌈w_L / 2⌉]` of the coarsest
    pub fn forward(&self, features: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        let laterals: Vec<Tensor<4>> = features
            .into_iter()
            .zip(&self.lateral)
            .map(|(c, conv)| conv.forward(c))
            .collect();
        let mut merged: Vec<Tensor<4>> = Vec::with_capacity(laterals.len());
        for lateral in laterals.into_iter().rev() {
            let x = match merged.last() {
                Some(coarser) => {
                    let [_, _, h, w] = lateral.dims();
                    let up = interpolate(
                        coarser.clone(),
                        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
                    );
                    lateral + up
                }
                None => lateral,
            };
            merged.push(x);
        }
        merged.reverse();
        let mut outs: Vec<Tensor<4>> = merged
            .into_iter()
            .zip(&self.output)
            .map(|(x, conv)| conv.forward(x))
            .collect();
        if let Some(top) = outs.last().cloned() {
            outs.push(max_pool2d(
                top,
                MaxPoolOptions::new([1, 1]).with_stride([2, 2]),
            ));
        }
        outs
    }
}
