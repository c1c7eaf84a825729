//! CIFAR and ImageNet ResNets with pluggable layer attention, as plain Burn modules.
//!
//! - [`ElaResNet`]: the CIFAR bottleneck ResNet-d (d = 9n + 2: 20, 56, 110, …) of SPEC §1 and
//!   torchvision's ImageNet ResNet-18/34/50/101/152 ([`Arch`]), any number of classes and input
//!   channels.
//! - [`registry`]: every backbone × attention variant under a canonical name
//!   (`resnet50_mrlab`, `cifar_resnet56_ela`, …).
//! - [`AttentionKind`]: per-block layer attention: none, MRLA-B (recurrent retrieval from the
//!   stage memory) or MRLA-L (the light recurrence) of MRLA (Fang et al., ICLR 2023), SPEC §2;
//!   or one of the paper's baselines ([`baselines`]: SE, ECA, CBAM, BAM, GC, DIA).
//! - ELA = MRLA-B with per-block skip flags ([`SkipFlags`], [`SkipMode`]), changeable between
//!   epochs without rebuilding the model (SPEC §3).
//! - [`weights`]: safetensors import/export with PyTorch-style names (skip flags travel in the
//!   file's metadata), and import of torchvision and official MRLA PyTorch checkpoints.
//!
//! The crate is device-agnostic: every constructor takes a `&Device`; the backend is whichever
//! Burn backend feature the final binary enables.

pub mod attention;
pub mod baselines;
pub mod block;
pub mod error;
mod file_names;
pub mod forward;
pub mod mrla;
pub mod prunable;
pub mod registry;
pub mod resnet;
pub mod weights;

pub use attention::{ALL_ATTENTION, AttentionKind, SkipFlags};
pub use block::{BlockKind, ResBlock};
pub use ela_prune::{SkipMode, StageLayout};
pub use error::ModelError;
pub use forward::FeatureOutput;
pub use mrla::{LayerAttention, LayerAttentionConfig};
pub use prunable::Prunable;
pub use resnet::{Arch, ElaResNet, ElaResNetConfig, ForwardOutput};
