//! Backend checks of the operations layer attention relies on, against equivalent formulations.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use std::sync::Mutex;

/// Flex's random generator is process-wide: tests that seed it run one at a time, so that each
/// draws the same numbers on every run.
static RNG: Mutex<()> = Mutex::new(());

/// A depthwise (groups = C) 3×3 convolution equals a dense convolution whose weight is
/// block-diagonal, in the output and in both gradients.
#[test]
fn depthwise_conv_matches_block_diagonal_dense_conv() {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    device.seed(11);
    let c = 8;
    let x0 = Tensor::<4>::random([2, c, 6, 6], Distribution::Normal(0.0, 1.0), &device);
    let w0 = Tensor::<4>::random([c, 1, 3, 3], Distribution::Normal(0.0, 1.0), &device);

    let x = x0.clone().require_grad();
    let w = w0.clone().require_grad();
    let y = conv2d(
        x.clone(),
        w.clone(),
        None,
        ConvOptions::new([1, 1], [1, 1], [1, 1], c),
    );
    let g = y.clone().powi_scalar(2).sum().backward();
    let (gx, gw) = (x.grad(&g).unwrap(), w.grad(&g).unwrap());

    let xd = x0.require_grad();
    let wd = w0.require_grad();
    // Dense weight [c, c, 3, 3] with w[i] on the diagonal.
    let eye = Tensor::<2>::eye(c, &device).reshape([c, c, 1, 1]);
    let dense = eye * wd.clone().reshape([c, 1, 3, 3]);
    let yd = conv2d(
        xd.clone(),
        dense,
        None,
        ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    );
    let gd = yd.clone().powi_scalar(2).sum().backward();

    let diff = |a: Tensor<4>, b: Tensor<4>| -> f32 { (a - b).abs().max().into_scalar() };
    assert!(diff(y, yd) < 1e-4, "forward");
    assert!(diff(gx, xd.grad(&gd).unwrap()) < 1e-3, "input gradient");
    assert!(diff(gw, wd.grad(&gd).unwrap()) < 1e-3, "weight gradient");
}

/// The autodiff gradient of MRLA-B's retrieval (keys, query, values through softmax attention)
/// agrees with central finite differences.
#[test]
fn retrieval_gradient_matches_finite_differences() {
    use burn::module::Param;
    use ela_model::LayerAttentionConfig;
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    device.seed(5);
    let mut layer = LayerAttentionConfig::new(32)
        .with_dim_per_head(16)
        .init(&device);
    let xs: Vec<Tensor<4>> = (0..3)
        .map(|i| {
            Tensor::random(
                [2, 32, 3, 3],
                Distribution::Normal(i as f64 * 0.3, 1.0),
                &device,
            )
        })
        .collect();
    let r = Tensor::<4>::random([2, 32, 3, 3], Distribution::Normal(0.0, 1.0), &device);
    let loss = |layer: &ela_model::LayerAttention| -> Tensor<1> {
        let keys: Vec<_> = xs
            .iter()
            .map(|x| layer.key(layer.descriptor(x.clone())))
            .collect();
        let values: Vec<_> = xs.iter().map(|x| layer.value(x.clone())).collect();
        let q = layer.query(layer.descriptor(xs[2].clone()));
        let (out, _) = layer.retrieve(q, &keys, &values);
        (out * r.clone()).sum()
    };
    let grads = loss(&layer).backward();
    let gq: Vec<f32> = layer
        .wq
        .weight
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let gv: Vec<f32> = layer
        .wv
        .weight
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();

    let h = 1e-2;
    let wq: Vec<f32> = layer.wq.weight.val().into_data().try_to_vec().unwrap();
    for i in 0..wq.len() {
        let eval = |delta: f32, layer: &mut ela_model::LayerAttention| -> f32 {
            let mut w = wq.clone();
            w[i] += delta;
            let t =
                Tensor::<3>::from_data(burn::tensor::TensorData::new(w, [1, 1, wq.len()]), &device);
            layer.wq.weight = Param::from_tensor(t);
            loss(layer).into_scalar()
        };
        let fd = (eval(h, &mut layer) - eval(-h, &mut layer)) / (2.0 * h);
        assert!(
            (fd - gq[i]).abs() < 2e-2 * (1.0 + fd.abs()),
            "Wq[{i}]: fd {fd} vs autodiff {}",
            gq[i]
        );
    }
    let wv: Vec<f32> = layer.wv.weight.val().into_data().try_to_vec().unwrap();
    for i in [0usize, 5, 40, 200, 287] {
        let eval = |delta: f32, layer: &mut ela_model::LayerAttention| -> f32 {
            let mut w = wv.clone();
            w[i] += delta;
            let t =
                Tensor::<4>::from_data(burn::tensor::TensorData::new(w, [32, 1, 3, 3]), &device);
            layer.wv.weight = Param::from_tensor(t);
            loss(layer).into_scalar()
        };
        let fd = (eval(h, &mut layer) - eval(-h, &mut layer)) / (2.0 * h);
        assert!(
            (fd - gv[i]).abs() < 2e-2 * (1.0 + fd.abs()),
            "Wv[{i}]: fd {fd} vs autodiff {}",
            gv[i]
        );
    }
}
