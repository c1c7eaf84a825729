//! `ela bench-retrieval`: one block's MRLA-B retrieval over t memory entries, and its value map.

#[allow(unused_imports)]
use super::*;

/// What `ela bench-retrieval` measures: one block's MRLA-B retrieval over t memory entries.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct RetrievalBenchConfig {
    /// Channels of the block output (CIFAR stages: 64, 128, 256).
    #[arg(long, default_value_t = 64)]
    pub channels: usize,
    /// Spatial size H = W (CIFAR stages: 32, 16, 8).
    #[arg(long, default_value_t = 32)]
    pub size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Largest memory length (t = 1 … this; ResNet-110 stages have 18 blocks).
    #[arg(long, default_value_t = 18)]
    pub max_entries: usize,
    /// Timed repetitions per t (median reported).
    #[arg(long, default_value_t = 10)]
    pub reps: usize,
    /// Backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: Backend,
    /// Device index.
    #[arg(long, default_value_t = 0)]
    pub device: usize,
    /// Also time the official code's form in PyTorch with this Python (default `python3`).
    #[arg(long, num_args = 0..=1, default_missing_value = "python3")]
    pub pytorch: Option<String>,
}

/// Median forward and forward+backward time of one retrieval over `t` entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetrievalRow {
    /// Memory entries.
    pub entries: usize,
    /// Median seconds of the forward pass.
    pub forward_seconds: f64,
    /// Median seconds of forward plus backward.
    pub forward_backward_seconds: f64,
}

/// Times [`ela_model::LayerAttention::retrieve`] (query, keys and value maps as leaves that need
/// gradients, as inside a training step) for t = 1 … `max_entries`, interleaving the lengths.
pub fn run_retrieval(config: &RetrievalBenchConfig) -> Result<Vec<RetrievalRow>> {
    if config.channels == 0 || !config.channels.is_multiple_of(16) {
        bail!("--channels must be a positive multiple of 16 (the heads' width)");
    }
    if config.max_entries == 0 || config.reps == 0 || config.batch_size == 0 || config.size == 0 {
        bail!("--max-entries, --reps, --batch-size and --size must be at least 1");
    }
    let device = backend::device(config.backend, config.device)?.autodiff();
    let layer = ela_model::LayerAttentionConfig::new(config.channels).init(&device);
    let (b, c, s) = (config.batch_size, config.channels, config.size);
    let leaf3 =
        || Tensor::<3>::random([b, 1, c], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let query = leaf3();
    let keys: Vec<Tensor<3>> = (0..config.max_entries).map(|_| leaf3()).collect();
    let values: Vec<Tensor<4>> = (0..config.max_entries)
        .map(|_| {
            Tensor::<4>::random([b, c, s, s], Distribution::Normal(0.0, 1.0), &device)
                .require_grad()
        })
        .collect();
    let time = |t: usize, backward: bool| -> f64 {
        let start = Instant::now();
        let (out, _) = layer.retrieve(query.clone(), &keys[..t], &values[..t]);
        let total = out.sum();
        if backward {
            let grads = total.backward();
            let g = values[0].grad(&grads).map(|g| g.sum().into_scalar::<f32>());
            std::hint::black_box(g);
        } else {
            let _: f32 = total.into_scalar();
        }
        start.elapsed().as_secs_f64()
    };
    // Warm-up, then rounds over every t.
    for t in 1..=config.max_entries {
        time(t, true);
    }
    let mut forward = vec![Vec::new(); config.max_entries];
    let mut both = vec![Vec::new(); config.max_entries];
    for _ in 0..config.reps {
        for t in 1..=config.max_entries {
            forward[t - 1].push(time(t, false));
            both[t - 1].push(time(t, true));
        }
    }
    Ok((1..=config.max_entries)
        .map(|t| RetrievalRow {
            entries: t,
            forward_seconds: median(&forward[t - 1]),
            forward_backward_seconds: median(&both[t - 1]),
        })
        .collect())
}

/// Median times of one block's depthwise 3×3 value map `v_t = Wv(x_t)` at the retrieval
/// benchmark's shape: the forward pass, and forward + backward with gradients for the input and
/// the weights, for the input only, and for the weights only.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ValueMapTimes {
    /// Forward pass.
    pub forward_seconds: f64,
    /// Forward and backward, gradients of input and weights.
    pub forward_backward_seconds: f64,
    /// Forward and backward, gradient of the input only.
    pub input_gradient_seconds: f64,
    /// Forward and backward, gradient of the weights only.
    pub weight_gradient_seconds: f64,
}

impl ValueMapTimes {
    /// The four passes, named, in seconds.
    pub fn rows(&self) -> [(&'static str, f64); 4] {
        [
            ("forward", self.forward_seconds),
            (
                "forward + backward (input and weights)",
                self.forward_backward_seconds,
            ),
            (
                "forward + backward (input only)",
                self.input_gradient_seconds,
            ),
            (
                "forward + backward (weights only)",
                self.weight_gradient_seconds,
            ),
        ]
    }
}

/// Times [`ela_model::LayerAttention::value`] (loss `sum(v²)`), interleaving the four cases.
pub fn run_value_map(config: &RetrievalBenchConfig) -> Result<ValueMapTimes> {
    if config.channels == 0 || !config.channels.is_multiple_of(16) {
        bail!("--channels must be a positive multiple of 16 (the heads' width)");
    }
    if config.reps == 0 || config.batch_size == 0 || config.size == 0 {
        bail!("--reps, --batch-size and --size must be at least 1");
    }
    let device = backend::device(config.backend, config.device)?.autodiff();
    let config_layer = ela_model::LayerAttentionConfig::new(config.channels);
    let layer = config_layer.init(&device);
    // Separately built: a clone would share the parameters' state with `layer`.
    let frozen = config_layer.init(&device).no_grad();
    let (b, c, s) = (config.batch_size, config.channels, config.size);
    let x = Tensor::<4>::random([b, c, s, s], Distribution::Normal(0.0, 1.0), &device);
    // (input needs a gradient, weights need one, backward at all)
    let cases = [
        (true, true, false),
        (true, true, true),
        (true, false, true),
        (false, true, true),
    ];
    let time = |(input, weights, backward): (bool, bool, bool)| -> f64 {
        let x = if input {
            x.clone().require_grad()
        } else {
            x.clone()
        };
        let layer = if weights { &layer } else { &frozen };
        let start = Instant::now();
        let v = layer.value(x.clone());
        let total = (v.clone() * v).sum();
        if backward {
            let grads = total.backward();
            let gx = x.grad(&grads).map(|g| g.sum().into_scalar::<f32>());
            let gw = layer
                .wv
                .weight
                .grad(&grads)
                .map(|g| g.sum().into_scalar::<f32>());
            std::hint::black_box((gx, gw));
        } else {
            let _: f32 = total.into_scalar();
        }
        start.elapsed().as_secs_f64()
    };
    for case in cases {
        time(case);
    }
    let mut seconds = vec![Vec::new(); cases.len()];
    for _ in 0..config.reps {
        for (i, case) in cases.into_iter().enumerate() {
            seconds[i].push(time(case));
        }
    }
    Ok(ValueMapTimes {
        forward_seconds: median(&seconds[0]),
        forward_backward_seconds: median(&seconds[1]),
        input_gradient_seconds: median(&seconds[2]),
        weight_gradient_seconds: median(&seconds[3]),
    })
}
