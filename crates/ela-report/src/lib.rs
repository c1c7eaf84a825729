//! Reports of ELA runs of any task: `ela report RUN_DIR…` writes a self-contained `report.md`
//! with PNG figures of what a run did and what ELA decided (the paper's Figs. 1, 2, 4 and 5 for
//! one's own runs), or compares runs of one task side by side:
//! - loss and accuracy curves (train and test) with the pruning decisions marked;
//! - per-block KL scores per window as a heatmap, with each decision's skips crossed;
//! - the mapping curve (normalized score → mapped value) with τ and every block's point;
//! - each stage's block × retrieved-block attention matrix, before and after pruning;
//! - seconds per epoch of every run, and a comparison table of the runs;
//! - for detection runs, the losses and COCO AP per epoch and the 12 statistics' table.
//!
//! It owns the figures and the report's text. It reads run directories through `ela-records`
//! only: it knows nothing of training, tensors or devices, and training does not know it.
//! Figures are drawn with `plotters` into PNG files; the text uses the Hack font embedded by
//! `epaint_default_fonts`, so no system font is needed.
//!
//! - [`run`]: one run read from its directory.
//! - [`markdown`]: `report.md` and its tables.
//! - [`curves`]: line charts (curves with decisions, seconds per epoch).
//! - [`heatmap`]: KL and attention heatmaps.
//! - [`mapping`]: the mapping curve.
//! - [`style`]: font, colours and PNG output shared by the figures.

pub mod curves;
pub mod detection;
pub mod detections;
pub mod heatmap;
pub mod mapping;
pub mod markdown;
pub mod run;
pub mod style;

pub use detections::{LabeledBox, draw_detections};
pub use heatmap::heat_rgb;
pub use markdown::{Report, write_report};
pub use run::Run;
pub use style::{Cell, Figure};
