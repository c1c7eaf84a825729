//! Heatmaps: per-window KL scores, and each stage's attention matrix before and after pruning.

use std::path::Path;

use anyhow::Result;
use ela_records::{AttentionRecord, PruningRecord};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use crate::style::{ANNOTATE_CELLS, Cell, EMPTY, FONT, Figure, PALETTE, draw_err, figure, render};

/// A heatmap's contents: labels, values (`None`: no value), crossed cells, colour range.
pub(crate) struct Heatmap<'a> {
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
pub(crate) fn heat_color(v: f64, range: (f64, f64)) -> RGBColor {
    let (lo, hi) = range;
    let hi = if hi > lo { hi } else { lo + 1.0 };
    ViridisRGB::get_color_normalized(v.clamp(lo, hi), lo, hi)
}

/// Draws `map` onto `area`; returns every cell with its centre pixel.
pub(crate) fn draw_heatmap(
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
pub(crate) fn label_at(labels: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() < 1e-6 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Per-block KL scores (columns) per window (rows).
pub(crate) fn kl_figure(p: &PruningRecord, path: &Path) -> Result<Figure> {
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

/// One stage's attention matrix in two records side by side.
pub(crate) fn attention_figure(
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
