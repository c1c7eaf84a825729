//! Build a registered model by its upstream name, run it, and flip ELA's skip flags.
//!
//! `cargo run --release -p ela-model --example registry`

use burn::tensor::{Device, Distribution, Tensor};
use ela_model::registry;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex(); // Device::cuda(0), Device::wgpu(..) with that Burn feature
    device.seed(0);
    let entry = registry::find("resnet50_ela")?;
    let model = entry.config(1000).init(&device)?;
    println!(
        "{}: {} ResNet-{}, {} parameters, blocks per stage {:?}",
        entry.name,
        entry.arch,
        entry.depth,
        model.parameter_count(),
        model.layout().blocks_per_stage()
    );

    let x = Tensor::<4>::random([1, 3, 224, 224], Distribution::Default, &device);
    let full = model.forward(x.clone());
    println!("logits {:?}", full.dims());

    // ELA skips the retrieval of redundant blocks: here the second block of every stage.
    let layout = model.layout();
    let mut flags = vec![false; layout.num_blocks()];
    let mut first = 0;
    for &n in layout.blocks_per_stage() {
        if n > 1 {
            flags[first + 1] = true;
        }
        first += n;
    }
    model.set_skip_flags(&flags)?;
    let pruned = model.forward(x);
    let change = (pruned - full).abs().max().into_scalar::<f32>();
    println!(
        "skipping {:?}: largest logit change {change:.4}",
        model.skip_flags()
    );
    Ok(())
}
