//! Drawing support shared by the figures: the embedded font, colours, PNG output.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result};
use ela_records::write_atomic;
use plotters::coord::Shift;
use plotters::prelude::*;

/// The font family every figure's text uses.
pub(crate) const FONT: &str = "sans-serif";

/// Cells of a heatmap that get their value written in them, at most.
pub(crate) const ANNOTATE_CELLS: usize = 160;

/// Colour of cells without a value.
pub(crate) const EMPTY: RGBColor = RGBColor(228, 228, 228);

/// Series colours.
pub(crate) const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

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

pub(crate) fn register_font() {
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
pub(crate) fn render<T>(
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
    write_atomic(path, png.get_ref())?;
    Ok(out)
}

pub(crate) fn draw_err<E: std::fmt::Debug>(path: &Path) -> impl FnOnce(E) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("cannot draw {}: {e:?}", path.display())
}

pub(crate) fn figure(path: &Path, size: (u32, u32), cells: Vec<Cell>) -> Figure {
    Figure {
        path: path.to_path_buf(),
        size,
        cells,
    }
}
