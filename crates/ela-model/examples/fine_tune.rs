//! Save a model's weights, load them into a model with a new head (fine-tuning to another
//! number of classes), and train it for a few SGD steps with Burn's autodiff.
//!
//! `cargo run --release -p ela-model --example fine_tune`

use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};
use ela_model::weights::LoadOptions;
use ela_model::{AttentionKind, ElaResNetConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex().autodiff();
    device.seed(1);
    let dir = std::env::temp_dir().join(format!("ela-fine-tune-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let weights = dir.join("pretrained.safetensors");

    // "Pretrained" weights of a 10-class ELA ResNet-20 (PyTorch names, skip flags in the
    // metadata); torchvision or official MRLA checkpoints load the same way (`.pth`, `.pth.tar`).
    let config = ElaResNetConfig::new(20, 10).with_attention(AttentionKind::MrlaB);
    config.init(&device)?.save_safetensors(&weights)?;

    // A 5-class model takes everything but the head.
    let mut model = ElaResNetConfig::new(20, 5)
        .with_attention(AttentionKind::MrlaB)
        .init(&device)?;
    let options = LoadOptions {
        skip_head: true,
        ..LoadOptions::default()
    };
    let report = model.load_checkpoint(&weights, &options)?;
    println!(
        "loaded {} tensors; missing {:?}",
        report.applied, report.missing
    );

    // A few SGD steps on one batch: the loss goes down.
    let x = Tensor::<4>::random([8, 3, 32, 32], Distribution::Default, &device);
    let y = Tensor::<1, Int>::from_data([0i64, 1, 2, 3, 4, 0, 1, 2], &device);
    let mut optim = SgdConfig::new().init();
    for step in 1..=5 {
        let logits = model.forward(x.clone());
        let loss = burn::nn::loss::CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, y.clone());
        println!("step {step}: loss {:.4}", loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.01, model, grads);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
