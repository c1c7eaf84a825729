//! The mapping curve (normalized score → mapped value) with τ and every block's point.

use std::path::Path;

use anyhow::Result;
use ela_records::PruningRecord;
use plotters::prelude::*;

use crate::curves::draw_legend;
use crate::style::{FONT, Figure, PALETTE, draw_err, figure, render};

/// The mapping curve with τ and every scored block's (normalized, mapped) point, per window.
/// `None` for the `fixed` method, which neither normalizes nor maps.
pub(crate) fn mapping_figure(p: &PruningRecord, path: &Path) -> Result<Option<Figure>> {
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
