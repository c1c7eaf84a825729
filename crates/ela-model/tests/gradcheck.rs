//! Whole-network gradient checks in double precision.
//!
//! On small inputs the loss of these networks is strongly curved: in single precision no step
//! size is both small enough for the curvature and large enough for rounding. In f64 the central
//! differences converge at a step of 1e-8, where rounding in the loss is still far below the
//! tolerance.
//!
//! The curvature is not MRLA's: on these 8×8 inputs with a batch of 4, the plain ResNet-29 is as
//! curved (along a random direction over `conv1`, central differences give -46, -309, -514, -488,
//! -490, -491.4 for steps 1e-2 … 1e-7 against the autodiff -491.2); BatchNorm over 4–16 values
//! per channel and dense ReLU kinks make the loss nearly non-smooth at that scale.
//!
//! This binary holds a single test: the float type is a process-wide device setting, and Flex's
//! random generator is global, so the checks run in a fixed order in one function.

use burn::module::Param;
use burn::tensor::{Device, Distribution, FloatDType, Tensor, TensorData};
use ela_model::{AttentionKind, ElaResNet, ElaResNetConfig, SkipMode};

type Getter<const D: usize> = fn(&mut ElaResNet) -> &mut Param<Tensor<D>>;

/// Compares the autodiff directional derivative of `loss` along a random direction `v` over one
/// parameter tensor with the central difference `(L(w + h v) - L(w - h v)) / 2h`.
fn check<const D: usize>(
    model: &ElaResNet,
    loss: &dyn Fn(&ElaResNet) -> Tensor<1>,
    name: &str,
    get: Getter<D>,
    device: &Device,
) {
    let grads = loss(model).backward();
    let mut m = model.clone();
    let w = get(&mut m).val();
    let g: Vec<f64> = get(&mut m)
        .grad(&grads)
        .unwrap_or_else(|| panic!("{name} has no gradient"))
        .into_data()
        .try_to_vec::<f64>()
        .unwrap();
    let shape = w.shape();
    let w0: Vec<f64> = w.into_data().try_to_vec::<f64>().unwrap();
    let v: Vec<f64> = Tensor::<1>::random([w0.len()], Distribution::Normal(0.0, 1.0), device)
        .into_data()
        .try_to_vec::<f64>()
        .unwrap();
    let analytic: f64 = g.iter().zip(&v).map(|(a, b)| a * b).sum();
    let h = 1e-8;
    let mut eval = |sign: f64| -> f64 {
        let moved: Vec<f64> = w0.iter().zip(&v).map(|(w, v)| w + sign * h * v).collect();
        let t = Tensor::<D>::from_data(TensorData::new(moved, shape.clone()), device);
        *get(&mut m) = Param::from_tensor(t);
        loss(&m).into_scalar()
    };
    let fd = (eval(1.0) - eval(-1.0)) / (2.0 * h);
    let scale = g.iter().map(|x| x * x).sum::<f64>().sqrt() * (w0.len() as f64).sqrt();
    assert!(
        scale > 1e-8,
        "{name}: gradient is zero, the check would be vacuous"
    );
    // Truncation is negligible at this step; what is left is rounding in the two loss values.
    let l0 = loss(model).into_scalar::<f64>().abs();
    let rounding = 64.0 * f64::EPSILON * l0.max(1.0) / h;
    assert!(
        (fd - analytic).abs() <= 1e-6 * scale + rounding,
        "{name}: finite difference {fd} vs autodiff {analytic} (scale {scale}, rounding {rounding})"
    );
}

#[test]
fn whole_network_gradients_match_finite_differences_in_f64() {
    let mut device = Device::flex();
    device
        .configure(FloatDType::F64)
        .expect("flex supports f64");
    let device = device.autodiff();
    device.seed(9);

    let cases = [
        (AttentionKind::MrlaB, SkipMode::Retrieval),
        (AttentionKind::MrlaB, SkipMode::Full),
        (AttentionKind::MrlaL, SkipMode::Retrieval),
    ];
    for (attention, mode) in cases {
        let model = ElaResNetConfig::new(29, 5)
            .with_attention(attention)
            .with_skip_mode(mode)
            .with_zero_init_last_bn(false)
            .init(&device)
            .unwrap();
        if attention == AttentionKind::MrlaB {
            // Skip one block in each of the first two stages.
            model
                .set_skip_flags(&[false, true, false, false, true, false, false, false, false])
                .unwrap();
        }
        let x = Tensor::<4>::random([4, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        let r = Tensor::<2>::random([4, 5], Distribution::Normal(0.0, 1.0), &device);
        let loss = move |m: &ElaResNet| -> Tensor<1> { (m.forward(x.clone()) * r.clone()).sum() };
        let tag = format!("{}/{:?}", attention.name(), mode);

        check(
            &model,
            &loss,
            &format!("{tag} conv1"),
            |m| &mut m.conv1.weight,
            &device,
        );
        check(
            &model,
            &loss,
            &format!("{tag} layer1.0.mrla.wk"),
            |m| &mut m.layer1[0].mrla.as_mut().unwrap().wk.weight,
            &device,
        );
        check(
            &model,
            &loss,
            &format!("{tag} layer1.0.mrla.wv"),
            |m| &mut m.layer1[0].mrla.as_mut().unwrap().wv.weight,
            &device,
        );
        check(
            &model,
            &loss,
            &format!("{tag} layer1.2.mrla.wq"),
            |m| &mut m.layer1[2].mrla.as_mut().unwrap().wq.weight,
            &device,
        );
        check(
            &model,
            &loss,
            &format!("{tag} layer2.1.conv2"),
            |m| &mut m.layer2[1].conv2.weight,
            &device,
        );
        check(
            &model,
            &loss,
            &format!("{tag} layer2.2.mrla.wv"),
            |m| &mut m.layer2[2].mrla.as_mut().unwrap().wv.weight,
            &device,
        );
        check(
            &model,
            &loss,
            &format!("{tag} layer3.2.bn_mrla.gamma"),
            |m| &mut m.layer3[2].bn_mrla.as_mut().unwrap().gamma,
            &device,
        );
        if attention == AttentionKind::MrlaL {
            check(
                &model,
                &loss,
                &format!("{tag} layer2.1.mrla.lambda_t"),
                |m| {
                    m.layer2[1]
                        .mrla
                        .as_mut()
                        .unwrap()
                        .lambda_t
                        .as_mut()
                        .unwrap()
                },
                &device,
            );
        }
    }
}
