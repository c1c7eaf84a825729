//! Redundancy scores and pruning decisions of Efficient Layer Attention (ELA).
//!
//! ELA ("Enhancing Layer Attention Efficiency through Pruning Redundant Retrievals", Li & Huang,
//! arXiv 2503.06473) measures how much an MRLA-B block's attention distribution repeats its
//! nearest active predecessor's ([`kl`], SPEC §3.1), averages that score over windows of epochs
//! ([`schedule`], SPEC §3.2), and turns the scores into skip decisions with the Enhanced Beta
//! Quantile Mapping or one of the paper's ablation alternatives ([`decide`], SPEC §3.3–3.4).
//!
//! Everything here is plain logic on slices, plus the tensor kernels that compute the KL on the
//! training device ([`kl_tensor`], behind the default `tensor` feature), so it is unit-testable
//! without a GPU, and the records that describe a run's decisions can use its types without
//! depending on Burn (`default-features = false`).

pub mod decide;
pub mod error;
pub mod kl;
#[cfg(feature = "tensor")]
pub mod kl_tensor;
pub mod layout;
pub mod schedule;

pub use decide::{Decision, EbqmParams, Mapping, PruneMethod};
pub use error::PruneError;
pub use kl::{KlDirection, kl_padded};
#[cfg(feature = "tensor")]
pub use kl_tensor::kl_padded_tensor;
pub use layout::{SkipMask, SkipMode, StageLayout};
pub use schedule::{PruningSchedule, SchedulePreset, Window};
