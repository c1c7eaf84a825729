//! Safetensors import and export with PyTorch-style parameter names.
//!
//! Burn's field names follow the PyTorch attributes, so only a short remap table is needed:
//! `downsample.{conv,bn}` ↔ `downsample.{0,1}` (PyTorch's `nn.Sequential`), `mrla.{wq,wk,wv}` ↔
//! `mrla.{Wq,Wk,Wv}`; burn-store's PyTorch adapters rename BatchNorm `gamma/beta` ↔
//! `weight/bias` and transpose linear weights. PyTorch's BatchNorm `num_batches_tracked` has no
//! Burn counterpart: it is ignored on import, and PyTorch's `load_state_dict` fills it in.
//!
//! The file's metadata carries the model configuration (`ela.config`, JSON) and the skip flags
//! (`ela.skip_flags`, a JSON array of booleans), so a pruned model's inference honours them.

use std::collections::HashMap;
use std::path::Path;

use burn::store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::{AttentionKind, ElaResNet, ElaResNetConfig, ModelError, SkipMode};

/// Metadata key of the JSON model description.
pub const META_CONFIG: &str = "ela.config";
/// Metadata key of the JSON skip-flag array.
pub const META_SKIP_FLAGS: &str = "ela.skip_flags";

/// Burn path → PyTorch name.
const TO_TORCH: [(&str, &str); 5] = [
    (r"\.downsample\.conv\.", ".downsample.0."),
    (r"\.downsample\.bn\.", ".downsample.1."),
    (r"\.mrla\.wq\.", ".mrla.Wq."),
    (r"\.mrla\.wk\.", ".mrla.Wk."),
    (r"\.mrla\.wv\.", ".mrla.Wv."),
];
/// PyTorch name → Burn path.
const FROM_TORCH: [(&str, &str); 5] = [
    (r"\.downsample\.0\.", ".downsample.conv."),
    (r"\.downsample\.1\.", ".downsample.bn."),
    (r"\.mrla\.Wq\.", ".mrla.wq."),
    (r"\.mrla\.Wk\.", ".mrla.wk."),
    (r"\.mrla\.Wv\.", ".mrla.wv."),
];

/// The architecture a weights file was written for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelDescription {
    /// Depth d.
    pub depth: usize,
    /// Classes of the head.
    pub num_classes: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Layer attention.
    pub attention: AttentionKind,
    /// Channels per head.
    pub dim_per_head: usize,
    /// Skip mode.
    pub skip_mode: SkipMode,
}

impl ModelDescription {
    /// The configuration that builds this architecture.
    pub fn config(&self) -> ElaResNetConfig {
        ElaResNetConfig::new(self.depth, self.num_classes)
            .with_in_channels(self.in_channels)
            .with_attention(self.attention)
            .with_dim_per_head(self.dim_per_head)
            .with_skip_mode(self.skip_mode)
    }
}

/// What an import applied, and what it found no place for.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Tensors applied to the model.
    pub applied: usize,
    /// Model parameters the file did not have.
    pub missing: Vec<String>,
    /// File tensors the model has no parameter for (`num_batches_tracked` excluded).
    pub unused: Vec<String>,
    /// Skip flags from the file's metadata, if it had any.
    pub skip_flags: Option<Vec<bool>>,
}

/// Reads the metadata of a safetensors file without loading its tensors.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, ModelError> {
    let err = |reason: String| ModelError::Weights {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| err(format!("not a valid safetensors file: {e}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

impl ElaResNet {
    /// The architecture of this model.
    pub fn description(&self) -> ModelDescription {
        ModelDescription {
            depth: self.depth(),
            num_classes: self.num_classes(),
            in_channels: self.in_channels(),
            attention: self.attention(),
            dim_per_head: self.layer1[0].mrla.as_ref().map_or(16, |m| m.dim_per_head),
            skip_mode: self.skip_mode(),
        }
    }

    /// Writes the parameters and BN statistics with PyTorch names, plus the architecture and
    /// skip flags as metadata.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), ModelError> {
        let description = serde_json::to_string(&self.description()).expect("serializable");
        let flags = serde_json::to_string(&self.skip_flags()).expect("serializable");
        let mut store = TO_TORCH
            .iter()
            .fold(SafetensorsStore::from_file(path), |s, (a, b)| {
                s.with_key_remapping(*a, *b)
            })
            .with_to_adapter(BurnToPyTorchAdapter)
            .metadata(META_CONFIG, description)
            .metadata(META_SKIP_FLAGS, flags)
            .overwrite(true);
        self.save_into(&mut store).map_err(|e| ModelError::Weights {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Loads parameters written with PyTorch names (by [`save_safetensors`](Self::save_safetensors)
    /// or by PyTorch's `safetensors.torch.save_file(model.state_dict())`).
    ///
    /// Shape mismatches are errors. With `strict`, so are missing parameters and unused
    /// tensors; otherwise they are reported. Skip flags in the metadata are applied.
    pub fn load_safetensors(
        &mut self,
        path: &Path,
        strict: bool,
    ) -> Result<LoadReport, ModelError> {
        let err = |reason: String| ModelError::Weights {
            path: path.to_path_buf(),
            reason,
        };
        let meta = read_metadata(path)?;
        let mut store = FROM_TORCH
            .iter()
            .fold(SafetensorsStore::from_file(path), |s, (a, b)| {
                s.with_key_remapping(*a, *b)
            })
            .with_from_adapter(PyTorchToBurnAdapter)
            .map_indices_contiguous(false)
            .allow_partial(true)
            .validate(true);
        let result = self.load_from(&mut store).map_err(|e| err(e.to_string()))?;
        if !result.errors.is_empty() {
            let errors: Vec<String> = result.errors.iter().map(|e| format!("{e:?}")).collect();
            return Err(err(errors.join("; ")));
        }
        let missing: Vec<String> = result.missing.iter().map(|(p, _)| p.clone()).collect();
        let unused: Vec<String> = result
            .unused
            .iter()
            .filter(|k| !k.ends_with("num_batches_tracked"))
            .cloned()
            .collect();
        if strict && !(missing.is_empty() && unused.is_empty()) {
            return Err(err(format!(
                "does not match the model (depth {}, attention {}): missing {:?}, unused {:?}",
                self.depth(),
                self.attention(),
                missing,
                unused
            )));
        }
        let skip_flags = match meta.get(META_SKIP_FLAGS) {
            Some(json) => {
                let flags: Vec<bool> = serde_json::from_str(json).map_err(|e| {
                    err(format!(
                        "metadata {META_SKIP_FLAGS} is not a bool array: {e}"
                    ))
                })?;
                self.set_skip_flags(&flags)
                    .map_err(|e| err(e.to_string()))?;
                Some(flags)
            }
            None => None,
        };
        Ok(LoadReport {
            applied: result.applied.len(),
            missing,
            unused,
            skip_flags,
        })
    }
}
