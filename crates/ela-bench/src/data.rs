//! `ela bench-data`: images per second of the CIFAR and ImageNet input pipelines.

#[allow(unused_imports)]
use super::*;

/// What `ela bench-data` measures: the CIFAR training input pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, clap::Args)]
pub struct DataBenchConfig {
    /// CIFAR directory (`data/cifar10` after `cargo xtask fetch cifar10`); default: random
    /// images of CIFAR's size, which cost the pipeline exactly as much.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Images per measurement (random images only).
    #[arg(long, default_value_t = 20_000)]
    pub images: usize,
    /// Loader worker counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    pub workers: Vec<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Measure the ImageNet pipeline instead, on the images of this image-folder split
    /// (`DIR/<class>/*.JPEG`, e.g. ImageNet's `train`): JPEG decoding, then decoding with the
    /// training (random-resized crop + flip) or evaluation (resize + centre crop) transform,
    /// then loader epochs per worker count. At most --images images are used.
    #[arg(long)]
    pub imagenet: Option<std::path::PathBuf>,
}

/// Images per second of one configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataBenchRow {
    /// What was measured.
    pub stage: String,
    /// Loader workers (0: on the calling thread).
    pub workers: usize,
    /// Images per second.
    pub images_per_second: f64,
}

/// Measures the ImageNet pipeline on the first `--images` files of an image-folder split.
fn run_imagenet_data(config: &DataBenchConfig, dir: &std::path::Path) -> Result<Vec<DataBenchRow>> {
    use burn::data::dataloader::DataLoaderBuilder;

    use ela_data::dataset::{EpochClock, ImageBatcher};
    use ela_data::imagenet::{CROP, FolderIndex, ImageFolderSet, decode, normalization};

    let index = FolderIndex::scan(dir, None)?;
    let clock = EpochClock::new();
    clock.set(1);
    let train = ImageFolderSet::new(&index, true, 0, clock.clone()).truncated(config.images);
    let eval = ImageFolderSet::new(&index, false, 0, clock.clone()).truncated(config.images);
    let n = train.files_len();
    let mut rows = Vec::new();
    let mut measure = |stage: &str, workers: usize, f: &mut dyn FnMut() -> Result<()>| {
        let start = Instant::now();
        f()?;
        rows.push(DataBenchRow {
            stage: stage.into(),
            workers,
            images_per_second: n as f64 / start.elapsed().as_secs_f64(),
        });
        anyhow::Ok(())
    };
    measure("read + JPEG decode", 0, &mut || {
        for (path, _) in index.files.iter().take(n) {
            let bytes = std::fs::read(path)?;
            std::hint::black_box(decode(path, &bytes).map_err(anyhow::Error::msg)?);
        }
        Ok(())
    })?;
    measure("decode + random-resized crop 224 + flip", 0, &mut || {
        for i in 0..n {
            std::hint::black_box(train.item(i).map_err(anyhow::Error::msg)?);
        }
        Ok(())
    })?;
    measure("decode + resize 256 + centre crop 224", 0, &mut || {
        for i in 0..n {
            std::hint::black_box(eval.item(i).map_err(anyhow::Error::msg)?);
        }
        Ok(())
    })?;
    let device = Device::flex();
    for &workers in &config.workers {
        let loader = DataLoaderBuilder::new(ImageBatcher::new([3, CROP, CROP], normalization()))
            .batch_size(config.batch_size)
            .num_workers(workers)
            .set_device(device.clone())
            .build(train.clone());
        measure(
            "loader epoch (decode, augment, normalize, batch)",
            workers,
            &mut || {
                let mut seen = 0;
                for batch in loader.iter() {
                    seen += batch?.targets.dims()[0];
                }
                if seen != n {
                    bail!("the loader returned {seen} of {n} images");
                }
                Ok(())
            },
        )?;
    }
    Ok(rows)
}

/// Measures the CIFAR pipeline: the augmentation alone, then a full epoch of the loader
/// (shuffle, pad-and-crop, flip, normalization into a `[B, 3, 32, 32]` tensor) per worker count.
pub fn run_data(config: &DataBenchConfig) -> Result<Vec<DataBenchRow>> {
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::data::dataset::Dataset;

    use ela_data::cifar::{Augmented, CifarKind, IMAGE_BYTES, channel_stats, load};
    use ela_data::dataset::{EpochClock, EpochShuffled, ImageBatcher, ImageSet, splitmix};

    if config.batch_size == 0 || config.images == 0 {
        bail!("--batch-size and --images must be at least 1");
    }
    if let Some(dir) = &config.imagenet {
        return run_imagenet_data(config, dir);
    }
    let set = match &config.data_dir {
        Some(dir) => load(dir, CifarKind::Cifar10)?.train,
        None => {
            let pixels = (0..config.images * IMAGE_BYTES)
                .map(|i| splitmix(i as u64) as u8)
                .collect();
            let labels = (0..config.images).map(|i| (i % 10) as u8).collect();
            ImageSet::new(pixels, labels, [3, 32, 32], 10)
        }
    };
    let n = set.len();
    let norm = channel_stats(&set);
    let device = Device::flex();
    let clock = EpochClock::new();
    let mut rows = Vec::new();

    let augmented = Augmented::new(set.clone(), 4, 0, clock.clone());
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(augmented.get(i)?);
    }
    rows.push(DataBenchRow {
        stage: "pad-crop-flip only".into(),
        workers: 0,
        images_per_second: n as f64 / start.elapsed().as_secs_f64(),
    });

    for &workers in &config.workers {
        let loader = DataLoaderBuilder::new(ImageBatcher::new([3, 32, 32], norm.clone()))
            .batch_size(config.batch_size)
            .num_workers(workers)
            .set_device(device.clone())
            .build(EpochShuffled::new(
                Augmented::new(set.clone(), 4, 0, clock.clone()),
                n,
                0,
                clock.clone(),
            ));
        let start = Instant::now();
        let mut seen = 0;
        for batch in loader.iter() {
            seen += batch?.targets.dims()[0];
        }
        if seen != n {
            bail!("the loader returned {seen} of {n} images");
        }
        rows.push(DataBenchRow {
            stage: "loader epoch (shuffle, augment, normalize, batch)".into(),
            workers,
            images_per_second: n as f64 / start.elapsed().as_secs_f64(),
        });
    }
    Ok(rows)
}
