//! The optimizer of every run: SGD as PyTorch's, with Nesterov momentum or not, and BN and
//! biases optionally left out of weight decay.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::momentum::MomentumConfig;
use burn::optim::{ModuleOptimizer, SgdConfig, decay::WeightDecayConfig};
use burn::prelude::Tensor;
use serde::{Deserialize, Serialize};

/// Module paths of `module`'s 1-D parameters: BN scales and shifts, and biases.
pub fn one_dim_parameters(module: &impl Module) -> Vec<String> {
    #[derive(Default)]
    struct Collect {
        path: Vec<String>,
        found: Vec<String>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _param: &Param<Tensor<D>>) {
            if D == 1 {
                self.found.push(self.path.join("."));
            }
        }
    }
    let mut collect = Collect::default();
    module.visit(&mut collect);
    collect.found
}

/// SGD as PyTorch's: momentum with dampening 0, coupled L2 weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdSettings {
    /// Momentum (0: none).
    pub momentum: f64,
    /// Nesterov momentum (the classification recipes) or plain (MMDetection's).
    pub nesterov: bool,
    /// Weight decay (0: none).
    pub weight_decay: f64,
    /// Weight decay also on the 1-D parameters (BN scales and shifts, biases).
    pub decay_norm_and_bias: bool,
}

impl SgdSettings {
    /// The optimizer for `module`. Without `decay_norm_and_bias`, its 1-D parameters (BN,
    /// biases) get no weight decay: they form their own group, matched by module path, so the
    /// split survives a checkpoint and resume.
    pub fn init(&self, module: &impl Module) -> ModuleOptimizer {
        let momentum = (self.momentum > 0.0).then(|| {
            MomentumConfig::new()
                .with_momentum(self.momentum)
                .with_dampening(0.0)
                .with_nesterov(self.nesterov)
        });
        let config = SgdConfig::new().with_momentum(momentum);
        let decayed = config.clone().with_weight_decay(
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32)),
        );
        let optim = decayed.init();
        if self.decay_norm_and_bias || self.weight_decay == 0.0 {
            return optim;
        }
        optim.with_group(
            ParamGroup::from_paths(one_dim_parameters(module)),
            config.build(),
            None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Distribution};
    use ela_model::ElaResNetConfig;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// One SGD step without momentum: a decayed parameter moves by −lr·(g + wd·w), an undecayed
    /// one by −lr·g.
    #[test]
    fn norm_and_bias_parameters_can_be_left_out_of_weight_decay() {
        let device = Device::flex().autodiff();
        let net = ElaResNetConfig::new(11, 3).init(&device).unwrap();
        let paths = one_dim_parameters(&net);
        assert!(paths.contains(&"bn1.gamma".to_string()), "{paths:?}");
        assert!(paths.contains(&"fc.bias".to_string()), "{paths:?}");
        assert!(
            !paths
                .iter()
                .any(|p| p.ends_with(".weight") && p.contains("conv"))
        );
        let (lr, wd) = (0.5, 0.1);
        for decay_1d in [true, false] {
            let mut optim = SgdSettings {
                momentum: 0.0,
                nesterov: true,
                weight_decay: wd,
                decay_norm_and_bias: decay_1d,
            }
            .init(&net);
            let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Default, &device);
            let loss = net.forward(x).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let g_gamma = values(grads.get::<1>(net.bn1.gamma.id).unwrap());
            let g_conv = values(grads.get::<4>(net.conv1.weight.id).unwrap());
            let gamma = values(net.bn1.gamma.val());
            let conv = values(net.conv1.weight.val());
            let stepped = optim.step(lr, net.clone(), grads);
            let new_gamma = values(stepped.bn1.gamma.val());
            let new_conv = values(stepped.conv1.weight.val());
            let gamma_decay = if decay_1d { wd } else { 0.0 };
            for i in 0..gamma.len() {
                let want =
                    gamma[i] - (lr * (g_gamma[i] as f64 + gamma_decay * gamma[i] as f64)) as f32;
                assert!(
                    (new_gamma[i] - want).abs() < 1e-5,
                    "decay_1d {decay_1d}: γ[{i}]"
                );
            }
            for i in (0..conv.len()).step_by(37) {
                let want = conv[i] - (lr * (g_conv[i] as f64 + wd * conv[i] as f64)) as f32;
                assert!(
                    (new_conv[i] - want).abs() < 1e-5,
                    "decay_1d {decay_1d}: w[{i}]"
                );
            }
        }
    }
}
