//! `ela report RUN_DIR…`: a self-contained `report.md` with PNG figures of what a run did and
//! what ELA decided (the paper's Figs. 1, 2, 4 and 5 for one's own runs):
//! - loss and accuracy curves (train and test) with the pruning decisions marked;
//! - per-block KL scores per window as a heatmap, with each decision's skips crossed;
//! - the mapping curve (normalized score → mapped value) with τ and every block's point;
//! - each stage's block × retrieved-block attention matrix, before and after pruning;
//! - seconds per epoch of every run, and a comparison table of the runs.
//!
//! Figures are drawn with `plotters` into PNG files; the text uses the Hack font
//! embedded by `epaint_default_fonts`, so no system font is needed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use crate::attention::AttentionRecord;
use crate::run::{ATTENTION_FILE, EpochMetrics, PruningRecord, read_attention};

/// The font family every figure's text uses.
const FONT: &str = "sans-serif";
/// Cells of a heatmap that get their value written in them, at most.
const ANNOTATE_CELLS: usize = 160;
/// Colour of cells without a value.
const EMPTY: RGBColor = RGBColor(228, 228, 228);
/// Series colours.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One finished (or stopped) run, read from its directory.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run directory.
    pub dir: PathBuf,
    /// A short name: the directory's last component.
    pub name: String,
    /// The resolved `config.json`.
    pub config: serde_json::Value,
    /// `metrics.csv`, one row per epoch.
    pub metrics: Vec<EpochMetrics>,
    /// `pruning.json` (ELA runs).
    pub pruning: Option<PruningRecord>,
    /// `attention.json` (MRLA-B and ELA runs).
    pub attention: Vec<AttentionRecord>,
}

impl Run {
    /// Reads a run directory; every error names the file and what is wrong with it.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{} is not a run directory", dir.display());
        }
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).with_context(|| {
            format!(
                "cannot read {} ({} holds no run)",
                config_path.display(),
                dir.display()
            )
        })?;
        let config: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", config_path.display()))?;
        let metrics = read_metrics(&dir.join("metrics.csv"))?;
        let pruning_path = dir.join("pruning.json");
        let pruning = if pruning_path.exists() {
            let text = std::fs::read_to_string(&pruning_path)
                .with_context(|| format!("cannot read {}", pruning_path.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!("{} is not a valid pruning record", pruning_path.display())
            })?)
        } else {
            None
        };
        let attention_path = dir.join(ATTENTION_FILE);
        let attention = if attention_path.exists() {
            read_attention(&attention_path)?
        } else {
            Vec::new()
        };
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| dir.display().to_string());
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            config,
            metrics,
            pruning,
            attention,
        })
    }

    fn setting(&self, key: &str) -> String {
        match &self.config[key] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        }
    }

    /// File-name-safe form of the name.
    fn slug(&self) -> String {
        self.name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// Reads `metrics.csv` as written by [`crate::run::RunDir`].
pub fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_metrics(&text).with_context(|| format!("{} is not a valid metrics file", path.display()))
}

/// Parses the text of a `metrics.csv`.
pub fn parse_metrics(text: &str) -> Result<Vec<EpochMetrics>> {
    let mut lines = text.lines();
    let header = lines.next().context("it is empty")?;
    if !header.starts_with("epoch,lr,train_loss") {
        bail!("line 1 is not the metrics header");
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 10 {
            bail!("line {n} has {} fields, expected 10", fields.len());
        }
        let num = |k: usize| -> Result<f64> {
            let v: f64 = fields[k].parse().with_context(|| {
                format!("line {n}, field {}: '{}' is not a number", k + 1, fields[k])
            })?;
            Ok(v)
        };
        let epoch: usize = fields[0]
            .parse()
            .with_context(|| format!("line {n}: epoch '{}' is not a whole number", fields[0]))?;
        let skipped = if fields[9].is_empty() {
            Vec::new()
        } else {
            fields[9]
                .split(';')
                .map(|s| s.parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| {
                    format!("line {n}: skipped blocks '{}' are not indices", fields[9])
                })?
        };
        rows.push(EpochMetrics {
            epoch,
            lr: num(1)?,
            train_loss: num(2)?,
            train_acc: num(3)?,
            test_loss: num(4)?,
            test_acc: num(5)?,
            train_seconds: num(6)?,
            epoch_seconds: num(7)?,
            skipped,
        });
    }
    Ok(rows)
}

/// A heatmap cell as drawn: its value and the pixel at its centre.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Row (window, or attending block).
    pub row: usize,
    /// Column (block, or retrieved block).
    pub col: usize,
    /// The value it shows; `None` for an empty (grey) cell.
    pub value: Option<f64>,
    /// Centre pixel in the PNG.
    pub pixel: (i32, i32),
}

/// One written figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// The PNG file.
    pub path: PathBuf,
    /// Size in pixels.
    pub size: (u32, u32),
    /// Every cell of a heatmap figure, row by row (empty for other figures).
    pub cells: Vec<Cell>,
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct Report {
    /// `report.md`.
    pub markdown: PathBuf,
    /// Every figure, in the order the report shows them.
    pub figures: Vec<Figure>,
}

impl Report {
    /// The figure whose file name is `name`.
    pub fn figure(&self, name: &str) -> Option<&Figure> {
        self.figures
            .iter()
            .find(|f| f.path.file_name().is_some_and(|n| n == name))
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is a valid TrueType file; failing here is a build defect.
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::HACK_REGULAR)
            .map_err(|_| ())
            .expect("the embedded Hack font parses");
    });
}

/// Draws a `size` figure with `draw` into memory, then writes it to `path` as a PNG,
/// atomically like every other run-directory file.
fn render<T>(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<T>,
) -> Result<T> {
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    let out = {
        let root = BitMapBackend::with_buffer(&mut buf, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err(path))?;
        let out = draw(&root)?;
        root.present().map_err(draw_err(path))?;
        out
    };
    let image = image::RgbImage::from_raw(size.0, size.1, buf).context("figure buffer size")?;
    let mut png = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut png, image::ImageOutputFormat::Png)
        .with_context(|| format!("cannot encode {}", path.display()))?;
    crate::run::write_atomic(path, png.get_ref())?;
    Ok(out)
}

fn draw_err<E: std::fmt::Debug>(path: &Path) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("cannot draw {}: {e:?}", path.display())
}

/// Writes `report.md` and its figures into `out` for `runs`.
pub fn write_report(runs: &[Run], out: &Path) -> Result<Report> {
    if runs.is_empty() {
        bail!("no run directory given");
    }
    register_font();
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create report directory {}", out.display()))?;
    let mut md = String::new();
    let mut figures = Vec::new();
    let names: Vec<String> = runs.iter().map(|r| r.dir.display().to_string()).collect();
    writeln!(md, "# ELA run report\n\nRuns: {}\n", names.join(", ")).ok();

    md.push_str("## Summary\n\n");
    md.push_str(&comparison_table(runs));
    let time = epoch_time_figure(runs, &out.join("epoch-time.png"))?;
    writeln!(md, "\n![Training seconds per epoch](epoch-time.png)\n").ok();
    figures.push(time);

    for (i, run) in runs.iter().enumerate() {
        let prefix = if runs.len() == 1 {
            String::new()
        } else {
            format!("{}-{}-", i + 1, run.slug())
        };
        writeln!(md, "## {}\n", run.name).ok();
        writeln!(
            md,
            "`{}` ResNet-{} on {}, seed {}, {} epochs, lr {}, batch {}, skip mode {}.\n",
            run.setting("attention"),
            run.setting("depth"),
            run.setting("dataset"),
            run.setting("seed"),
            run.setting("epochs"),
            run.setting("lr"),
            run.setting("batch_size"),
            run.setting("skip_mode"),
        )
        .ok();
        for change in run.config["resume_overrides"]
            .as_array()
            .into_iter()
            .flatten()
        {
            writeln!(
                md,
                "Resumed with base learning rate {} from epoch {} (was {}).\n",
                change["lr"], change["from_epoch"], change["previous_lr"]
            )
            .ok();
        }
        if run.metrics.is_empty() {
            md.push_str("No epoch finished.\n\n");
        } else {
            let name = format!("{prefix}curves.png");
            figures.push(curves_figure(run, &out.join(&name))?);
            writeln!(md, "![Loss and accuracy]({name})\n").ok();
        }
        if let Some(p) = &run.pruning {
            md.push_str(&decision_table(p));
            if p.windows.is_empty() {
                md.push_str("No pruning window has ended yet.\n\n");
            } else {
                let name = format!("{prefix}kl.png");
                figures.push(kl_figure(p, &out.join(&name))?);
                writeln!(
                    md,
                    "![KL scores per window]({name})\n\nEach cell is a block's mean KL score \
                     D_t over its window (grey: no score, a stage's first block or a block \
                     already skipped); a cross marks the blocks that window's decision skipped.\n"
                )
                .ok();
                let name = format!("{prefix}mapping.png");
                if let Some(fig) = mapping_figure(p, &out.join(&name))? {
                    figures.push(fig);
                    writeln!(md, "![Score mapping]({name})\n").ok();
                }
            }
        }
        if let (Some(first), Some(last)) = (run.attention.first(), run.attention.last()) {
            writeln!(
                md,
                "### Attention maps\n\nMean MRLA-B attention weight of each block (row) on each \
                 block of its stage memory (column), over the test set: epoch {} (skipping \
                 {:?}) and epoch {} (skipping {:?}).\n",
                first.epoch, first.skipped, last.epoch, last.skipped
            )
            .ok();
            for stage in 0..first.stages.len().min(last.stages.len()) {
                let name = format!("{prefix}attention-stage{}.png", stage + 1);
                figures.push(attention_figure(first, last, stage, &out.join(&name))?);
                writeln!(md, "![Stage {} attention]({name})\n", stage + 1).ok();
            }
        }
    }
    let markdown = out.join("report.md");
    crate::run::write_atomic(&markdown, md.as_bytes())?;
    Ok(Report { markdown, figures })
}

fn comparison_table(runs: &[Run]) -> String {
    let mut t = String::from(
        "| run | method | depth | dataset | seed | epochs | test acc (%) | best (%) | \
         train s/epoch | skipped blocks |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        let last = r.metrics.last();
        let best = r
            .metrics
            .iter()
            .map(|m| m.test_acc)
            .fold(f64::NAN, f64::max);
        let mean_time = if r.metrics.is_empty() {
            f64::NAN
        } else {
            r.metrics.iter().map(|m| m.train_seconds).sum::<f64>() / r.metrics.len() as f64
        };
        let skipped = r.pruning.as_ref().map_or("-".to_string(), |p| {
            let s: Vec<String> = (0..p.final_mask.len())
                .filter(|&i| p.final_mask[i])
                .map(|i| i.to_string())
                .collect();
            if s.is_empty() {
                "none".into()
            } else {
                s.join(", ")
            }
        });
        writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.setting("attention"),
            r.setting("depth"),
            r.setting("dataset"),
            r.setting("seed"),
            r.metrics.len(),
            last.map_or("-".into(), |m| format!("{:.2}", m.test_acc)),
            if best.is_nan() {
                "-".into()
            } else {
                format!("{best:.2}")
            },
            if mean_time.is_nan() {
                "-".into()
            } else {
                format!("{mean_time:.1}")
            },
            skipped
        )
        .ok();
    }
    t
}

fn decision_table(p: &PruningRecord) -> String {
    let mut t = format!(
        "### Pruning decisions\n\nMethod `{}`, windows {}, KL {:?}.\n\n\
         | window | batches | quantile Q | skipped by it | skipped after |\n|---|---|---|---|---|\n",
        p.method.name(),
        p.schedule,
        p.kl_direction
    );
    for w in &p.windows {
        let after: Vec<usize> = (0..w.mask.len()).filter(|&i| w.mask[i]).collect();
        writeln!(
            t,
            "| {}–{} | {} | {} | {:?} | {:?} |",
            w.start,
            w.end,
            w.batches,
            w.quantile.map_or("-".into(), |q| format!("{q:.4}")),
            w.newly_skipped,
            after
        )
        .ok();
    }
    t.push('\n');
    t
}

/// A line chart over epochs: one line (with point markers) per series, dashed vertical marks.
struct LineChart {
    title: String,
    y_desc: &'static str,
    /// Y range; drawn on a log scale when `log`.
    y: (f64, f64),
    log: bool,
    epochs: f64,
    lines: Vec<(String, Vec<(f64, f64)>)>,
    marks: Vec<f64>,
    legend: SeriesLabelPosition,
}

impl LineChart {
    fn draw(self, area: &DrawingArea<BitMapBackend<'_>, Shift>, path: &Path) -> Result<()> {
        let builder = |area| {
            let mut b = ChartBuilder::on(area);
            b.caption(&self.title, (FONT, 20))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60);
            b
        };
        let x = 0.5..self.epochs + 0.5;
        let (lo, hi) = self.y;
        if self.log {
            let mut chart = builder(area)
                .build_cartesian_2d(x, (lo..hi).log_scale())
                .map_err(draw_err(path))?;
            self.draw_on(&mut chart, path)
        } else {
            let mut chart = builder(area)
                .build_cartesian_2d(x, lo..hi)
                .map_err(draw_err(path))?;
            self.draw_on(&mut chart, path)
        }
    }

    fn draw_on<'a, Y>(
        &self,
        chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
        path: &Path,
    ) -> Result<()>
    where
        Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    {
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(self.y_desc)
            .label_style((FONT, 14))
            .draw()
            .map_err(draw_err(path))?;
        for (i, (label, points)) in self.lines.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(draw_err(path))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(draw_err(path))?;
        }
        let (lo, hi) = self.y;
        for &d in &self.marks {
            chart
                .draw_series(DashedLineSeries::new(
                    [(d, lo), (d, hi)],
                    6,
                    4,
                    PALETTE[3].stroke_width(1),
                ))
                .map_err(draw_err(path))?;
        }
        draw_legend(chart, self.legend.clone(), path)
    }
}

/// The series legend of `chart` at `position`, on a translucent white box.
fn draw_legend<'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
    path: &Path,
) -> Result<()>
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(draw_err(path))?;
    Ok(())
}

fn figure(path: &Path, size: (u32, u32), cells: Vec<Cell>) -> Figure {
    Figure {
        path: path.to_path_buf(),
        size,
        cells,
    }
}

/// Loss (log scale) and accuracy per epoch, train and test, with decision epochs marked.
fn curves_figure(run: &Run, path: &Path) -> Result<Figure> {
    let size = (1200, 450);
    let epochs = run.metrics.len().max(1) as f64;
    let marks: Vec<f64> = run
        .pruning
        .as_ref()
        .map(|p| p.windows.iter().map(|w| w.end as f64).collect())
        .unwrap_or_default();
    let series = |f: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        run.metrics
            .iter()
            .map(|m| (m.epoch as f64, f(m)))
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .collect()
    };
    let losses: Vec<f64> = run
        .metrics
        .iter()
        .flat_map(|m| [m.train_loss, m.test_loss])
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let lo = losses
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(1.0)
        * 0.8;
    let hi = losses.iter().copied().fold(0.0, f64::max).max(lo * 10.0) * 1.25;
    let loss = LineChart {
        title: format!("{}: loss", run.name),
        y_desc: "cross-entropy (log)",
        y: (lo, hi),
        log: true,
        epochs,
        lines: vec![
            ("train".into(), series(|m| m.train_loss)),
            ("test".into(), series(|m| m.test_loss)),
        ],
        marks: marks.clone(),
        legend: SeriesLabelPosition::UpperRight,
    };
    let accuracy = LineChart {
        title: "accuracy (%); dashed: pruning decisions".into(),
        y_desc: "accuracy (%)",
        y: (0.0, 100.0),
        log: false,
        epochs,
        lines: vec![
            ("train".into(), series(|m| m.train_acc)),
            ("test".into(), series(|m| m.test_acc)),
        ],
        marks,
        legend: SeriesLabelPosition::LowerRight,
    };
    render(path, size, |root| {
        let (left, right) = root.split_horizontally(size.0 / 2);
        loss.draw(&left, path)?;
        accuracy.draw(&right, path)
    })?;
    Ok(figure(path, size, Vec::new()))
}

/// Training seconds per epoch, one line per run.
fn epoch_time_figure(runs: &[Run], path: &Path) -> Result<Figure> {
    let size = (900, 420);
    let epochs = runs
        .iter()
        .map(|r| r.metrics.len())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let top = runs
        .iter()
        .flat_map(|r| r.metrics.iter().map(|m| m.train_seconds))
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.15;
    let chart = LineChart {
        title: "training seconds per epoch".into(),
        y_desc: "seconds",
        y: (0.0, top),
        log: false,
        epochs,
        lines: runs
            .iter()
            .map(|r| {
                let points = r.metrics.iter().map(|m| (m.epoch as f64, m.train_seconds));
                (r.name.clone(), points.collect())
            })
            .collect(),
        marks: Vec::new(),
        legend: SeriesLabelPosition::LowerRight,
    };
    render(path, size, |root| chart.draw(root, path))?;
    Ok(figure(path, size, Vec::new()))
}

/// A heatmap's contents: labels, values (`None`: no value), crossed cells, colour range.
struct Heatmap<'a> {
    title: String,
    x_desc: &'a str,
    y_desc: &'a str,
    rows: Vec<String>,
    cols: Vec<String>,
    values: Vec<Vec<Option<f64>>>,
    crossed: Vec<(usize, usize)>,
    range: (f64, f64),
}

/// The colour of `v` on the viridis scale over `range`, as RGB bytes.
pub fn heat_rgb(v: f64, range: (f64, f64)) -> [u8; 3] {
    let RGBColor(r, g, b) = heat_color(v, range);
    [r, g, b]
}

/// The colour of `v` on the viridis scale over `range`.
fn heat_color(v: f64, range: (f64, f64)) -> RGBColor {
    let (lo, hi) = range;
    let hi = if hi > lo { hi } else { lo + 1.0 };
    ViridisRGB::get_color_normalized(v.clamp(lo, hi), lo, hi)
}

/// Draws `map` onto `area`; returns every cell with its centre pixel.
fn draw_heatmap(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    map: &Heatmap<'_>,
    path: &Path,
) -> Result<Vec<Cell>> {
    let nr = map.rows.len().max(1);
    let nc = map.cols.len().max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(&map.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        // Cell (r, c) spans [c - 0.5, c + 0.5] × [r - 0.5, r + 0.5]: ticks fall on centres.
        .build_cartesian_2d(-0.5..nc as f64 - 0.5, nr as f64 - 0.5..-0.5)
        .map_err(draw_err(path))?;
    let (rows, cols) = (map.rows.clone(), map.cols.clone());
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(map.x_desc)
        .y_desc(map.y_desc)
        .x_labels(nc)
        .y_labels(nr)
        .x_label_formatter(&move |x| label_at(&cols, *x))
        .y_label_formatter(&move |y| label_at(&rows, *y))
        .label_style((FONT, 13))
        .draw()
        .map_err(draw_err(path))?;
    let mut cells = Vec::new();
    for (r, row) in map.values.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let color = v.map_or(EMPTY, |v| heat_color(v, map.range));
            let (x, y) = (c as f64 - 0.5, r as f64 - 0.5);
            chart
                .draw_series([Rectangle::new(
                    [(x + 0.02, y + 0.02), (x + 0.98, y + 0.98)],
                    color.filled(),
                )])
                .map_err(draw_err(path))?;
            cells.push(Cell {
                row: r,
                col: c,
                value: *v,
                pixel: chart.backend_coord(&(x + 0.5, y + 0.5)),
            });
        }
    }
    if nr * nc <= ANNOTATE_CELLS {
        for cell in &cells {
            let Some(t) = cell.value else { continue };
            let mid = 0.5 * (map.range.0 + map.range.1);
            let ink = if t > mid { BLACK } else { WHITE };
            let text = if t.abs() >= 100.0 {
                format!("{t:.0}")
            } else {
                format!("{t:.2}")
            };
            chart
                .draw_series([Text::new(
                    text,
                    (cell.col as f64 - 0.22, cell.row as f64 + 0.1),
                    (FONT, 12).into_font().color(&ink),
                )])
                .map_err(draw_err(path))?;
        }
    }
    for &(r, c) in &map.crossed {
        let (x, y) = (c as f64 - 0.5, r as f64 - 0.5);
        let red = PALETTE[3].stroke_width(3);
        chart
            .draw_series([
                PathElement::new([(x + 0.12, y + 0.12), (x + 0.88, y + 0.88)], red),
                PathElement::new([(x + 0.12, y + 0.88), (x + 0.88, y + 0.12)], red),
            ])
            .map_err(draw_err(path))?;
    }
    Ok(cells)
}

/// The label of the cell centred on `v`; none between centres.
fn label_at(labels: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() < 1e-6 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Per-block KL scores (columns) per window (rows).
fn kl_figure(p: &PruningRecord, path: &Path) -> Result<Figure> {
    let blocks = p.blocks_per_stage.iter().sum::<usize>();
    let size = (
        (260 + 56 * blocks as u32).max(600),
        180 + 56 * p.windows.len() as u32,
    );
    let cells = render(path, size, |root| {
        let values: Vec<Vec<Option<f64>>> = p
            .windows
            .iter()
            .map(|w| {
                (0..blocks)
                    .map(|i| w.blocks.get(i).and_then(|b| b.kl))
                    .collect()
            })
            .collect();
        let all: Vec<f64> = values.iter().flatten().flatten().copied().collect();
        let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let crossed = p
            .windows
            .iter()
            .enumerate()
            .flat_map(|(r, w)| w.newly_skipped.iter().map(move |&c| (r, c)))
            .collect();
        let map = Heatmap {
            title: format!(
                "KL score D_t per window ({}); x = skipped by the decision",
                p.method.name()
            ),
            x_desc: "block",
            y_desc: "window (epochs)",
            rows: p
                .windows
                .iter()
                .map(|w| format!("{}-{}", w.start, w.end))
                .collect(),
            cols: (0..blocks).map(|i| i.to_string()).collect(),
            values,
            crossed,
            range: if all.is_empty() { (0.0, 1.0) } else { (lo, hi) },
        };
        let cells = draw_heatmap(root, &map, path)?;
        Ok(cells)
    })?;
    Ok(figure(path, size, cells))
}

/// The mapping curve with τ and every scored block's (normalized, mapped) point, per window.
/// `None` for the `fixed` method, which neither normalizes nor maps.
fn mapping_figure(p: &PruningRecord, path: &Path) -> Result<Option<Figure>> {
    let Some(tau) = p.method.tau() else {
        return Ok(None);
    };
    let size = (800, 560);
    render(path, size, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: normalized score -> mapped value, tau = {tau}",
                    p.method.name()
                ),
                (FONT, 20),
            )
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.02..1.02, -0.02..1.05)
            .map_err(draw_err(path))?;
        chart
            .configure_mesh()
            .x_desc("min-max normalized KL score s_t")
            .y_desc("mapped value m_t")
            .label_style((FONT, 14))
            .draw()
            .map_err(draw_err(path))?;
        let curve: Vec<(f64, f64)> = (0..=200)
            .filter_map(|i| {
                let s = i as f64 / 200.0;
                p.method.curve(s).map(|m| (s, m))
            })
            .collect();
        if !curve.is_empty() {
            chart
                .draw_series(LineSeries::new(curve, BLACK.stroke_width(2)))
                .map_err(draw_err(path))?
                .label("mapping")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        }
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, tau), (1.0, tau)],
                8,
                5,
                PALETTE[3].stroke_width(2),
            ))
            .map_err(draw_err(path))?
            .label("tau: skip below")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], PALETTE[3].stroke_width(2)));
        for (wi, w) in p.windows.iter().enumerate() {
            let color = PALETTE[wi % PALETTE.len()];
            let points: Vec<(f64, f64, usize, bool)> = w
                .blocks
                .iter()
                .filter_map(|b| {
                    let s = b.normalized?;
                    Some((s, b.mapped.unwrap_or(s), b.index, b.skip))
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(points.iter().map(|&(s, m, _, skip)| {
                    let style = if skip {
                        color.filled()
                    } else {
                        color.stroke_width(2)
                    };
                    Circle::new((s, m), 6, style)
                }))
                .map_err(draw_err(path))?
                .label(format!("window {}-{} (filled: skipped)", w.start, w.end))
                .legend(move |(x, y)| Circle::new((x + 9, y), 5, color.filled()));
            chart
                .draw_series(points.iter().map(|&(s, m, i, _)| {
                    Text::new(
                        format!("{i}"),
                        (s + 0.012, m + 0.035),
                        (FONT, 13).into_font(),
                    )
                }))
                .map_err(draw_err(path))?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, path)
    })?;
    Ok(Some(figure(path, size, Vec::new())))
}

/// One stage's attention matrix in two records side by side.
fn attention_figure(
    before: &AttentionRecord,
    after: &AttentionRecord,
    stage: usize,
    path: &Path,
) -> Result<Figure> {
    let n = before.stages[stage]
        .len()
        .max(after.stages[stage].len())
        .max(1);
    let side = (160 + 44 * n as u32).max(420);
    let size = (2 * side, side + 40);
    let cells = render(path, size, |root| {
        let (left, right) = root.split_horizontally(side);
        let first_block: usize = before.stages[..stage].iter().map(Vec::len).sum();
        let mut cells = Vec::new();
        for (area, rec, side_index) in [(&left, before, 0usize), (&right, after, 1)] {
            let rows = &rec.stages[stage];
            let values: Vec<Vec<Option<f64>>> = rows
                .iter()
                .map(|r| r.clone().unwrap_or_else(|| vec![None; rows.len()]))
                .collect();
            let labels: Vec<String> = (0..rows.len())
                .map(|p| (first_block + p).to_string())
                .collect();
            let map = Heatmap {
                title: format!(
                    "stage {}, epoch {} ({})",
                    stage + 1,
                    rec.epoch,
                    if rec.skipped.is_empty() {
                        "nothing skipped".to_string()
                    } else {
                        format!("skipping {:?}", rec.skipped)
                    }
                ),
                x_desc: "retrieved block",
                y_desc: "attending block",
                rows: labels.clone(),
                cols: labels,
                values,
                crossed: Vec::new(),
                range: (0.0, 1.0),
            };
            let drawn = draw_heatmap(area, &map, path)?;
            // Cells of the right-hand matrix are numbered after the left one's rows.
            cells.extend(drawn.into_iter().map(|mut c| {
                c.row += side_index * n;
                c
            }));
        }
        Ok(cells)
    })?;
    Ok(figure(path, size, cells))
}
