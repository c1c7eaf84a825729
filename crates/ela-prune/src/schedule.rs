//! When redundancy scores are measured and decisions applied (SPEC §3.2).
//!
//! Training is split into pruning stages. Each has a *window* of epochs (1-based, inclusive)
//! over whose every training batch the scores are averaged; the decision is applied at the end
//! of the window's last epoch. Optimizer state and learning-rate schedule carry on unchanged.

use serde::{Deserialize, Serialize};

use crate::PruneError;

/// A window of epochs, 1-based and inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First epoch of the window.
    pub start: usize,
    /// Last epoch of the window; the decision is applied after it.
    pub end: usize,
}

impl Window {
    /// Whether `epoch` (1-based) lies in the window.
    pub fn contains(&self, epoch: usize) -> bool {
        (self.start..=self.end).contains(&epoch)
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// The paper's window presets, each defined for its recipe's run length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulePreset {
    /// CIFAR, 180 epochs: windows 1–3, 45–48, 91–93.
    Cifar,
    /// ImageNet, 100 epochs: windows 1–3, 51–53.
    Imagenet,
    /// COCO detection, 12 epochs: epochs 1 and 7.
    Coco,
}

impl SchedulePreset {
    /// The preset's windows and the run length they were defined for.
    pub fn definition(self) -> (Vec<Window>, usize) {
        let w = |start, end| Window { start, end };
        match self {
            Self::Cifar => (vec![w(1, 3), w(45, 48), w(91, 93)], 180),
            Self::Imagenet => (vec![w(1, 3), w(51, 53)], 100),
            Self::Coco => (vec![w(1, 1), w(7, 7)], 12),
        }
    }
}

impl std::str::FromStr for SchedulePreset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cifar" => Ok(Self::Cifar),
            "imagenet" => Ok(Self::Imagenet),
            "coco" => Ok(Self::Coco),
            _ => Err(format!(
                "unknown preset '{s}' (expected cifar, imagenet or coco)"
            )),
        }
    }
}

/// The pruning windows of one run, checked against its number of epochs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruningSchedule {
    windows: Vec<Window>,
}

impl PruningSchedule {
    /// Explicit windows: ascending, non-overlapping, each `1 ≤ start ≤ end ≤ num_epochs`.
    pub fn new(windows: Vec<Window>, num_epochs: usize) -> Result<Self, PruneError> {
        let mut previous_end = 0;
        for w in &windows {
            let reason = if w.start == 0 {
                Some("epochs are 1-based".to_string())
            } else if w.start > w.end {
                Some("start is after end".to_string())
            } else if w.end > num_epochs {
                Some(format!("the run has only {num_epochs} epochs"))
            } else if w.start <= previous_end {
                Some("windows must be ascending and must not overlap".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(PruneError::Window {
                    start: w.start,
                    end: w.end,
                    reason,
                });
            }
            previous_end = w.end;
        }
        Ok(Self { windows })
    }

    /// Parses `"1-3,45-48,91-93"` (a single epoch may be written `"7"`); `""` or `"none"` means
    /// no pruning.
    pub fn parse(spec: &str, num_epochs: usize) -> Result<Self, PruneError> {
        let spec_err = |reason: String| PruneError::WindowSpec {
            spec: spec.to_string(),
            reason,
        };
        let trimmed = spec.trim();
        if trimmed.is_empty() || trimmed == "none" {
            return Self::new(Vec::new(), num_epochs);
        }
        let mut windows = Vec::new();
        for part in trimmed.split(',') {
            let part = part.trim();
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let num = |x: &str| {
                x.trim()
                    .parse::<usize>()
                    .map_err(|_| spec_err(format!("'{x}' is not an epoch number")))
            };
            windows.push(Window {
                start: num(a)?,
                end: num(b)?,
            });
        }
        Self::new(windows, num_epochs)
    }

    /// A preset's windows, scaled from the preset's run length to `num_epochs`.
    ///
    /// At the preset's own length (180 for CIFAR, 100 for ImageNet, 12 for COCO) this gives the
    /// paper's windows exactly. For other lengths each window keeps its relative position:
    /// `start' = round((start − 1)·E/L) + 1`, `end' = max(start', round(end·E/L))`, and a window
    /// that would overlap its predecessor is moved after it or, if the run is too short, dropped.
    pub fn preset(preset: SchedulePreset, num_epochs: usize) -> Self {
        let (windows, length) = preset.definition();
        let scale = |e: usize| ((e as f64) * num_epochs as f64 / length as f64).round() as usize;
        let mut scaled: Vec<Window> = Vec::new();
        for w in windows {
            let min_start = scaled.last().map_or(1, |p| p.end + 1);
            let start = (scale(w.start - 1) + 1).max(min_start);
            let end = scale(w.end).max(start);
            if end <= num_epochs {
                scaled.push(Window { start, end });
            }
        }
        Self { windows: scaled }
    }

    /// The windows, ascending.
    pub fn windows(&self) -> &[Window] {
        &self.windows
    }

    /// Index of the window containing `epoch`, if any.
    pub fn window_of(&self, epoch: usize) -> Option<usize> {
        self.windows.iter().position(|w| w.contains(epoch))
    }

    /// Index of the window whose decision is applied at the end of `epoch`, if any.
    pub fn decision_at(&self, epoch: usize) -> Option<usize> {
        self.windows.iter().position(|w| w.end == epoch)
    }
}

impl std::fmt::Display for PruningSchedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.windows.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self.windows.iter().map(Window::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(start: usize, end: usize) -> Window {
        Window { start, end }
    }

    #[test]
    fn presets_at_their_own_length_are_the_papers_windows() {
        let s = PruningSchedule::preset(SchedulePreset::Cifar, 180);
        assert_eq!(s.windows(), &[w(1, 3), w(45, 48), w(91, 93)]);
        let s = PruningSchedule::preset(SchedulePreset::Imagenet, 100);
        assert_eq!(s.windows(), &[w(1, 3), w(51, 53)]);
        let s = PruningSchedule::preset(SchedulePreset::Coco, 12);
        assert_eq!(s.windows(), &[w(1, 1), w(7, 7)]);
    }

    #[test]
    fn presets_scale_to_short_runs_without_overlap() {
        let s = PruningSchedule::preset(SchedulePreset::Cifar, 6);
        assert_eq!(s.windows(), &[w(1, 1), w(2, 2), w(4, 4)]);
        let s = PruningSchedule::preset(SchedulePreset::Cifar, 2);
        assert_eq!(s.windows(), &[w(1, 1), w(2, 2)]);
        let s = PruningSchedule::preset(SchedulePreset::Cifar, 1);
        assert_eq!(s.windows(), &[w(1, 1)]);
        let s = PruningSchedule::preset(SchedulePreset::Imagenet, 10);
        assert_eq!(s.windows(), &[w(1, 1), w(6, 6)]);
        for e in 1..400 {
            let s = PruningSchedule::preset(SchedulePreset::Cifar, e);
            assert!(
                PruningSchedule::new(s.windows().to_vec(), e).is_ok(),
                "E={e}"
            );
        }
    }

    #[test]
    fn windows_are_parsed_and_checked_against_the_run() {
        let s = PruningSchedule::parse("1-3, 45-48,91", 180).unwrap();
        assert_eq!(s.windows(), &[w(1, 3), w(45, 48), w(91, 91)]);
        assert_eq!(s.to_string(), "1-3,45-48,91-91");
        assert_eq!(s.window_of(46), Some(1));
        assert_eq!(s.window_of(4), None);
        assert_eq!(s.decision_at(48), Some(1));
        assert_eq!(s.decision_at(47), None);
        assert!(
            PruningSchedule::parse("none", 5)
                .unwrap()
                .windows()
                .is_empty()
        );
        for bad in ["1-3,2-4", "0-1", "3-2", "1-200", "5-6,1-2"] {
            assert!(
                matches!(
                    PruningSchedule::parse(bad, 180),
                    Err(PruneError::Window { .. })
                ),
                "{bad}"
            );
        }
        let err = PruningSchedule::parse("1-x", 10).unwrap_err();
        assert!(
            err.to_string().contains("'x' is not an epoch number"),
            "{err}"
        );
    }
}
