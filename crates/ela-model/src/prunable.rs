//! What a model offers ELA's pruning step, whatever its task: its layer-attention blocks' stage
//! layout, and skip flags that can be read and set in place (shared by every clone of the
//! model, so that parameters, optimizer state and schedule carry on unchanged).
//!
//! [`ElaResNet`] implements it; a model that contains one (a detector's backbone) implements it
//! by delegating. The KL scores themselves come from the attention weights that
//! [`ElaResNet::forward_with_attention`] returns.

use ela_prune::StageLayout;

use crate::{ElaResNet, ModelError};

/// A model whose layer-attention retrievals can be pruned block by block.
pub trait Prunable {
    /// The blocks per stage.
    fn layout(&self) -> StageLayout;
    /// One flag per block, `true` where the block's retrieval is skipped.
    fn skip_flags(&self) -> Vec<bool>;
    /// Sets the skip flags in place; an error where the model cannot skip (no MRLA-B) or the
    /// flags do not fit its blocks.
    fn set_skip_flags(&self, flags: &[bool]) -> Result<(), ModelError>;
}

impl Prunable for ElaResNet {
    fn layout(&self) -> StageLayout {
        ElaResNet::layout(self)
    }

    fn skip_flags(&self) -> Vec<bool> {
        ElaResNet::skip_flags(self)
    }

    fn set_skip_flags(&self, flags: &[bool]) -> Result<(), ModelError> {
        ElaResNet::set_skip_flags(self, flags)
    }
}
