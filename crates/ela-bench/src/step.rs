//! The interleaved rounds: one training step and one inference pass of every variant per round.

#[allow(unused_imports)]
use super::*;

pub(super) struct Variant {
    model: ElaResNet,
    optim: ModuleOptimizer,
    skipped: Vec<usize>,
}

impl Variant {
    /// Builds variant `index` of [`VARIANTS`] at `depth` on the autodiff `device`.
    pub(super) fn new(
        config: &BenchConfig,
        depth: usize,
        index: usize,
        skipped: &[usize],
        device: &Device,
    ) -> Result<Self> {
        let (_, attention, mode, skips) = VARIANTS[index];
        let model = ElaResNetConfig::new(depth, config.num_classes())
            .with_arch(config.arch)
            .with_dim_per_head(ElaResNetConfig::official_dim_per_head(
                config.arch,
                attention,
            ))
            .with_in_channels(config.input()[0])
            .with_attention(attention)
            .with_skip_mode(mode)
            .init(device)?;
        let flags: Vec<bool> = (0..model.layout().num_blocks())
            .map(|i| skips && skipped.contains(&i))
            .collect();
        model.set_skip_flags(&flags)?;
        let optim = SgdConfig::new()
            .with_momentum(Some(MomentumConfig::new().with_momentum(0.9)))
            .init();
        Ok(Self {
            model,
            optim,
            skipped: if skips { skipped.to_vec() } else { Vec::new() },
        })
    }

    /// One SGD step; returns its wall time, synchronized by reading the loss back.
    pub(super) fn step(&mut self, x: &Tensor<4>, y: &Tensor<1, Int>) -> f64 {
        let start = Instant::now();
        let logits = self.model.forward(x.clone());
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        self.model = self.optim.step(0.01, self.model.clone(), grads);
        let _: f32 = loss.into_scalar();
        start.elapsed().as_secs_f64()
    }

    /// One eval-mode forward pass of the current weights on the inner (non-autodiff) device;
    /// returns its wall time, synchronized by reading a sum of the logits back.
    pub(super) fn infer(&self, x: &Tensor<4>) -> f64 {
        let model = self.model.valid();
        let start = Instant::now();
        let _: f32 = model.forward(x.clone()).sum().into_scalar();
        start.elapsed().as_secs_f64()
    }
}

/// The benchmark's random batch at `seed`: inputs on `device` (autodiff) and labels.
pub(super) fn batch(config: &BenchConfig, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    device.seed(config.seed);
    let [c, h, w] = config.input();
    let x = Tensor::<4>::random(
        [config.batch_size, c, h, w],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let labels: Vec<i64> = (0..config.batch_size)
        .map(|i| (i % config.num_classes()) as i64)
        .collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [config.batch_size]), device);
    (x, y)
}

/// Runs the benchmark at every depth.
pub fn run(config: &BenchConfig) -> Result<BenchReport> {
    config.validate()?;
    let unix_seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let base = backend::device(config.backend, config.device)?;
    let (warmup, rounds) = config.schedule();
    let mut depths = Vec::new();
    for &depth in &config.depths {
        eprintln!("ResNet-{depth}: {warmup} warm-up steps and {rounds} rounds per variant");
        depths.push(run_depth(config, depth, &base)?);
    }
    Ok(BenchReport {
        config: config.clone(),
        warmup,
        rounds,
        unix_seconds,
        host: Host::current(),
        revision: revision(),
        device: format!("{:?} {base:?}", config.backend),
        kernels: backend::kernels_line(config.backend),
        depths,
    })
}

fn run_depth(config: &BenchConfig, depth: usize, base: &Device) -> Result<DepthResult> {
    let skipped = config.skipped(depth)?;
    let device = base.clone().autodiff();
    let (x, y) = batch(config, &device);
    let x_inner = x.clone().inner();
    let mut variants = (0..VARIANTS.len())
        .map(|i| Variant::new(config, depth, i, &skipped, &device))
        .collect::<Result<Vec<_>>>()?;
    let (warmup, rounds) = config.schedule();
    // The first step of each variant compiles its kernels (and on GPUs autotunes them): its
    // time is kept apart, as what a run pays before its first training step.
    let mut first_steps = Vec::with_capacity(variants.len());
    for v in variants.iter_mut() {
        let mut first = None;
        for _ in 0..warmup {
            let t = v.step(&x, &y);
            first.get_or_insert(t);
        }
        v.infer(&x_inner);
        first_steps.push(first);
    }
    let n = variants.len();
    let mut train = vec![Vec::with_capacity(rounds); n];
    let mut inference = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (k + round) % n;
            train[i].push(variants[i].step(&x, &y));
        }
        for k in 0..n {
            let i = (k + round) % n;
            inference[i].push(variants[i].infer(&x_inner));
        }
    }
    let mut results = Vec::new();
    for (i, (v, (train, inference))) in variants
        .iter()
        .zip(timings(&train).into_iter().zip(timings(&inference)))
        .enumerate()
    {
        let name = VARIANTS[i].0;
        let memory = if config.measures_memory() {
            Some(memory_in_child(config, depth, &skipped, name)?)
        } else {
            None
        };
        results.push(VariantResult {
            name: name.to_string(),
            skipped: v.skipped.clone(),
            parameters: v.model.parameter_count(),
            train,
            inference,
            first_step_seconds: first_steps[i],
            memory,
        });
    }
    let pytorch = match &config.pytorch {
        Some(python) => Some(run_pytorch(config, depth, &skipped, python)?),
        None => None,
    };
    Ok(DepthResult {
        arch: config.arch,
        depth,
        variants: results,
        pytorch,
    })
}
