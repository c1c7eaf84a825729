//! Architecture, attention and skip behaviour of the CIFAR ResNets on the CPU (flex) backend.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use ela_model::{AttentionKind, ElaResNet, ElaResNetConfig, SkipMode};

fn device() -> Device {
    let device = Device::flex();
    device.seed(7);
    device
}

fn model(depth: usize, classes: usize, attention: AttentionKind, device: &Device) -> ElaResNet {
    ElaResNetConfig::new(depth, classes)
        .with_attention(attention)
        .init(device)
        .unwrap()
}

/// Extra parameters of one attention block with C channels: Wq and Wk (k each), the depthwise
/// 3×3 Wv (9C), bn_mrla (2C), and MRLA-L's λ (C).
fn attention_params(c: usize, light: bool) -> usize {
    let t = (((c as f64).log2() + 1.0) / 2.0) as usize;
    let k = if t % 2 == 1 { t } else { t + 1 };
    2 * k + 9 * c + 2 * c + if light { c } else { 0 }
}

#[test]
fn parameter_counts_equal_spec_table() {
    let device = device();
    // SPEC §1: (depth, CIFAR-10, CIFAR-100)
    for (depth, c10, c100) in [
        (20, 220_378, 243_508),
        (56, 591_322, 614_452),
        (110, 1_147_738, 1_170_868),
    ] {
        assert_eq!(
            model(depth, 10, AttentionKind::None, &device).parameter_count(),
            c10,
            "ResNet-{depth}"
        );
        assert_eq!(
            model(depth, 100, AttentionKind::None, &device).parameter_count(),
            c100
        );
        let n = (depth - 2) / 9;
        for (kind, light) in [(AttentionKind::MrlaB, false), (AttentionKind::MrlaL, true)] {
            let extra: usize = [64, 128, 256]
                .iter()
                .map(|&c| n * attention_params(c, light))
                .sum();
            assert_eq!(
                model(depth, 10, kind, &device).parameter_count(),
                c10 + extra,
                "{kind} {depth}"
            );
        }
    }
    // MRLA-B ResNet-20 on CIFAR-10: 220,378 + 2·(6 + 704) + 2·(10 + 1408) + 2·(10 + 2816)
    assert_eq!(
        model(20, 10, AttentionKind::MrlaB, &device).parameter_count(),
        230_286
    );
    let mnist = ElaResNetConfig::new(20, 10)
        .with_in_channels(1)
        .init(&device)
        .unwrap();
    assert_eq!(mnist.parameter_count(), 220_378 - 2 * 9 * 16);
}

#[test]
fn invalid_configurations_are_errors_not_panics() {
    let device = device();
    assert!(ElaResNetConfig::new(21, 10).init(&device).is_err());
    assert!(ElaResNetConfig::new(20, 0).init(&device).is_err());
    let err = ElaResNetConfig::new(20, 10)
        .with_attention(AttentionKind::MrlaB)
        .with_dim_per_head(48)
        .init(&device)
        .unwrap_err();
    assert!(err.to_string().contains("dim_per_head"), "{err}");
    let plain = model(20, 10, AttentionKind::None, &device);
    assert!(
        plain
            .set_skip_flags(&[false, true, false, false, false, false])
            .is_err()
    );
    let ela = model(20, 10, AttentionKind::MrlaB, &device);
    assert!(
        ela.set_skip_flags(&[true, false, false, false, false, false])
            .is_err(),
        "stage-first"
    );
    assert!(ela.set_skip_flags(&[false; 5]).is_err(), "wrong length");
}

fn input(device: &Device) -> Tensor<4> {
    Tensor::random([4, 3, 16, 16], Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn forward_and_backward_for_every_attention_option() {
    let device = device().autodiff();
    for kind in [
        AttentionKind::None,
        AttentionKind::MrlaB,
        AttentionKind::MrlaL,
    ] {
        for skips in [false, true] {
            if skips && kind != AttentionKind::MrlaB {
                continue;
            }
            let m = model(20, 10, kind, &device);
            if skips {
                m.set_skip_flags(&[false, true, false, true, false, false])
                    .unwrap();
            }
            let logits = m.forward(input(&device));
            assert_eq!(logits.dims(), [4, 10]);
            let grads = logits.clone().powi_scalar(2).mean().backward();
            let stem = m.conv1.weight.grad(&grads).expect("stem gradient");
            let norm: f32 = stem.abs().sum().into_scalar();
            assert!(norm.is_finite() && norm > 0.0, "{kind}: stem grad {norm}");
            let fc = m.fc.weight.grad(&grads).expect("head gradient");
            assert!(fc.abs().sum().into_scalar::<f32>() > 0.0);
            if kind != AttentionKind::None {
                // Block 2 (stage 2's first) attends; its value map gets a gradient.
                let wv = m.layer2[0].mrla.as_ref().unwrap().wv.weight.grad(&grads);
                assert!(wv.expect("wv gradient").abs().sum().into_scalar::<f32>() > 0.0);
            }
            if skips {
                // Block 1 is skipped in full mode: its attention gets no gradient at all.
                let mrla = m.layer1[1].mrla.as_ref().unwrap();
                assert!(mrla.wv.weight.grad(&grads).is_none(), "skipped block's Wv");
                assert!(mrla.wq.weight.grad(&grads).is_none(), "skipped block's Wq");
            }
        }
    }
}

#[test]
fn attention_weights_are_reported_per_block_and_follow_the_skip_mode() {
    let device = device();
    let m = model(56, 10, AttentionKind::MrlaB, &device); // 6 blocks per stage
    let x = input(&device);
    let out = m.forward_with_attention(x.clone());
    let lens: Vec<usize> = out
        .attention
        .iter()
        .map(|a| a.as_ref().unwrap().dims()[3])
        .collect();
    assert_eq!(lens, [1, 2, 3, 4, 5, 6].repeat(3));
    let heads: Vec<usize> = out
        .attention
        .iter()
        .map(|a| a.as_ref().unwrap().dims()[1])
        .collect();
    assert_eq!(&heads[..7], &[4, 4, 4, 4, 4, 4, 8], "G = C / 16");
    let logits = m.forward(x.clone());
    let diff: f32 = (logits - out.logits.clone()).abs().max().into_scalar();
    assert!(
        diff < 1e-5,
        "collecting weights must not change the result: {diff}"
    );

    let mut flags = vec![false; 18];
    flags[2] = true;
    flags[3] = true;
    m.set_skip_flags(&flags).unwrap();
    let full = m.forward_with_attention(x.clone());
    let lens: Vec<Option<usize>> = full.attention[..6]
        .iter()
        .map(|a| a.as_ref().map(|a| a.dims()[3]))
        .collect();
    assert_eq!(
        lens,
        [Some(1), Some(2), None, None, Some(3), Some(4)],
        "full: skipped blocks are not stored"
    );

    let retrieval = m
        .clone()
        .with_skip_mode(SkipMode::Retrieval)
        .forward_with_attention(x.clone());
    let lens: Vec<Option<usize>> = retrieval.attention[..6]
        .iter()
        .map(|a| a.as_ref().map(|a| a.dims()[3]))
        .collect();
    assert_eq!(
        lens,
        [Some(1), Some(2), None, None, Some(5), Some(6)],
        "retrieval: skipped blocks stay in memory"
    );
    let diff: f32 = (full.logits.clone() - retrieval.logits)
        .abs()
        .max()
        .into_scalar();
    assert!(diff > 1e-6, "the two modes compute different functions");
    let before = out.logits;
    let diff: f32 = (full.logits - before).abs().max().into_scalar();
    assert!(diff > 1e-6, "skipping changes the output");
}

#[test]
fn skip_flags_are_shared_by_clones_until_detached() {
    let device = device();
    let m = model(20, 10, AttentionKind::MrlaB, &device);
    let copy = m.clone();
    let valid = m.valid();
    let own = m.clone().with_own_skip_flags();
    m.set_skip_flags(&[false, true, false, false, false, true])
        .unwrap();
    assert_eq!(copy.skip_flags(), m.skip_flags());
    assert_eq!(
        valid.skip_flags(),
        m.skip_flags(),
        "the validation copy follows the mask"
    );
    assert_eq!(own.skip_flags(), vec![false; 6]);
}

#[test]
fn summary_lists_blocks_and_ends_with_the_parameter_count() {
    let device = device();
    let m = model(20, 100, AttentionKind::MrlaB, &device);
    m.set_skip_flags(&[false, true, false, false, false, false])
        .unwrap();
    let s = m.summary();
    assert_eq!(
        s.lines().last().unwrap(),
        format!("parameters: {}", m.parameter_count())
    );
    assert_eq!(s.lines().filter(|l| l.starts_with("block")).count(), 6);
    assert!(
        s.lines()
            .any(|l| l.contains("layer1.1") && l.contains("[skipped]"))
    );
}

/// Zero-init of the last BN (the ImageNet recipe) makes every residual branch start as the
/// identity: a block without a projection shortcut then returns relu(x) = x for x ≥ 0. The CIFAR
/// default keeps γ = 1.
#[test]
fn zero_init_of_the_last_bn_is_an_option() {
    let device = device();
    let zero = ElaResNetConfig::new(20, 10)
        .with_zero_init_last_bn(true)
        .init(&device)
        .unwrap();
    let ones = model(20, 10, AttentionKind::None, &device);
    for (z, o) in zero.layer2.iter().zip(&ones.layer2) {
        let gz: f32 = z
            .bn3
            .as_ref()
            .unwrap()
            .gamma
            .val()
            .abs()
            .sum()
            .into_scalar();
        let go: Vec<f32> = o
            .bn3
            .as_ref()
            .unwrap()
            .gamma
            .val()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_eq!(gz, 0.0);
        assert!(go.iter().all(|&g| g == 1.0));
    }
    let block = &zero.layer2[1].clone().valid();
    let x = Tensor::<4>::random([2, 128, 4, 4], Distribution::Uniform(0.0, 1.0), &device);
    let (out, _) = block.residual(x.clone());
    let diff: f32 = (out - x).abs().max().into_scalar();
    assert!(diff < 1e-6, "identity block differs by {diff}");
}
