//! A picture of an image's detections: each box outlined in its class's colour, with the class
//! name and score above it, its mask (Mask R-CNN) tinted in that colour (what `ela detect --out`
//! writes).

use std::path::Path;

use anyhow::{Context, Result};
use image::RgbImage;
use plotters::prelude::*;

use crate::style::{FONT, PALETTE, register_font};

/// One box to draw, in the image's pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledBox {
    /// `(x1, y1, x2, y2)`.
    pub bbox: [f32; 4],
    /// Class index (picks the colour).
    pub class: usize,
    /// What is written: the class name.
    pub label: String,
    /// Confidence, written after the name.
    pub score: f32,
    /// Instance mask at the image's size, row-major (non-zero = inside), tinted in the box's
    /// colour.
    pub mask: Option<Vec<u8>>,
}

/// Tints the pixels of each mask: half the pixel, half the box's colour.
fn tint_masks(buffer: &mut [u8], boxes: &[LabeledBox]) {
    for b in boxes {
        let Some(mask) = &b.mask else { continue };
        let RGBColor(r, g, bl) = PALETTE[b.class % PALETTE.len()];
        for (pixel, _) in buffer
            .chunks_exact_mut(3)
            .zip(mask)
            .filter(|(_, m)| **m != 0)
        {
            for (v, c) in pixel.iter_mut().zip([r, g, bl]) {
                *v = ((u16::from(*v) + u16::from(c)) / 2) as u8;
            }
        }
    }
}

/// Draws `boxes` (and their masks) over `image` and writes the PNG atomically.
pub fn draw_detections(image: &RgbImage, boxes: &[LabeledBox], path: &Path) -> Result<()> {
    register_font();
    let (w, h) = image.dimensions();
    let mut buffer = image.as_raw().clone();
    tint_masks(&mut buffer, boxes);
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let size = (f64::from(h.min(w)) / 28.0).clamp(10.0, 24.0);
        for b in boxes {
            let colour = PALETTE[b.class % PALETTE.len()];
            let [x1, y1, x2, y2] = b.bbox.map(|v| v.round() as i32);
            root.draw(&Rectangle::new(
                [(x1, y1), (x2, y2)],
                colour.stroke_width(2),
            ))
            .map_err(|e| anyhow::anyhow!("drawing a box: {e}"))?;
            let text = format!("{} {:.2}", b.label, b.score);
            let y = (y1 - size as i32 - 2).max(0);
            let style = TextStyle::from((FONT, size).into_font()).color(&colour);
            root.draw(&Text::new(text, (x1.max(0), y), style))
                .map_err(|e| anyhow::anyhow!("drawing a label: {e}"))?;
        }
        root.present()
            .map_err(|e| anyhow::anyhow!("drawing detections: {e}"))?;
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &buffer,
        w,
        h,
        image::ColorType::Rgb8,
    )
    .context("encoding the detections' PNG")?;
    ela_records::write_atomic(path, &png)
}
