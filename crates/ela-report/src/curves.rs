//! Line charts: loss and accuracy curves with the decisions marked, seconds per epoch.

use std::path::Path;

use anyhow::Result;
use ela_records::EpochRecord;
use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::run::Run;
use crate::style::{FONT, Figure, PALETTE, draw_err, figure, render};

/// A line chart over epochs: one line (with point markers) per series, dashed vertical marks.
pub(crate) struct LineChart {
    pub(crate) title: String,
    pub(crate) y_desc: &'static str,
    /// Y range; drawn on a log scale when `log`.
    pub(crate) y: (f64, f64),
    pub(crate) log: bool,
    pub(crate) epochs: f64,
    pub(crate) lines: Vec<(String, Vec<(f64, f64)>)>,
    pub(crate) marks: Vec<f64>,
    pub(crate) legend: SeriesLabelPosition,
}

impl LineChart {
    pub(crate) fn draw(
        self,
        area: &DrawingArea<BitMapBackend<'_>, Shift>,
        path: &Path,
    ) -> Result<()> {
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
pub(crate) fn draw_legend<'a, X, Y>(
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

/// Loss (log scale) and accuracy per epoch, train and test, with decision epochs marked.
pub(crate) fn curves_figure(run: &Run, path: &Path) -> Result<Figure> {
    let size = (1200, 450);
    let epochs = run.metrics.len().max(1) as f64;
    let marks: Vec<f64> = run
        .pruning
        .as_ref()
        .map(|p| p.windows.iter().map(|w| w.end as f64).collect())
        .unwrap_or_default();
    let series = |f: fn(&EpochRecord) -> f64| -> Vec<(f64, f64)> {
        run.metrics
            .iter()
            .map(|m| (m.epoch as f64, f(m)))
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .collect()
    };
    let losses: Vec<f64> = run
        .metrics
        .iter()
        .flat_map(|m| [m.value("train_loss"), m.value("test_loss")])
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
            ("train".into(), series(|m| m.value("train_loss"))),
            ("test".into(), series(|m| m.value("test_loss"))),
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
            ("train".into(), series(|m| m.value("train_acc"))),
            ("test".into(), series(|m| m.value("test_acc"))),
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
pub(crate) fn epoch_time_figure(runs: &[Run], path: &Path) -> Result<Figure> {
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
