//! CIFAR bottleneck ResNets with pluggable layer attention, as plain Burn modules.
//!
//! - [`ElaResNet`]: ResNet-d (d = 9n + 2: 20, 56, 110, …) of SPEC §1, any number of classes and
//!   input channels.
//! - [`AttentionKind`]: per-block layer attention: none, MRLA-B (recurrent retrieval from the
//!   stage memory) or MRLA-L (the light recurrence) of MRLA (Fang et al., ICLR 2023), SPEC §2;
//!   or one of the paper's baselines ([`baselines`]: SE, ECA, CBAM, BAM, GC, DIA).
//! - ELA = MRLA-B with per-block skip flags ([`SkipFlags`], [`SkipMode`]), changeable between
//!   epochs without rebuilding the model (SPEC §3).
//! - [`weights`]: safetensors import/export with PyTorch-style names; skip flags travel in the
//!   file's metadata.
//!
//! The crate is device-agnostic: every constructor takes a `&Device`; the backend is whichever
//! Burn backend feature the final binary enables.

pub mod attention;
pub mod baselines;
pub mod block;
pub mod error;
pub mod mrla;
pub mod resnet;
pub mod weights;

pub use attention::{ALL_ATTENTION, AttentionKind, SkipFlags, SkipMode};
pub use block::Bottleneck;
pub use ela_prune::StageLayout;
pub use error::ModelError;
pub use mrla::{LayerAttention, LayerAttentionConfig};
pub use resnet::{ElaResNet, ElaResNetConfig, ForwardOutput};
