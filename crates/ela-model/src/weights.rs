//! Safetensors import and export with PyTorch-style parameter names.
//!
//! Burn's field names follow the PyTorch attributes, so only a short remap table is needed:
//! `downsample.{conv,bn}` ↔ `downsample.{0,1}` (PyTorch's `nn.Sequential`), `mrla.{wq,wk,wv}` ↔
//! `mrla.{Wq,Wk,Wv}`; burn-store's PyTorch adapters rename BatchNorm `gamma/beta` ↔
//! `weight/bias` and transpose linear weights. PyTorch's BatchNorm `num_batches_tracked` has no
//! Burn counterpart: it is ignored on import, and PyTorch's `load_state_dict` fills it in.
//!
//! Checkpoints of other codebases load through the same names ([`ElaResNet::load_pytorch`]):
//! torchvision's ResNets (`.pth`, a bare state dict) and the official MRLA code's
//! (`.pth.tar` with a `state_dict`, `module.`-prefixed when saved from `DataParallel`). The
//! official MRLA-B models name their stages `stages.0..3` and their deep stem `conv1.0..6`
//! (`resnet/models/resnet_mrla_base.py`), and both official variants wrap the attention layer
//! as `mrla.mrla.W*` (`mrla_module`); these are mapped onto `layer1..4`, `stem.*`/`conv1` and
//! `mrla.W*`.
//!
//! The file's metadata carries the model configuration (`ela.config`, JSON) and the skip flags
//! (`ela.skip_flags`, a JSON array of booleans), so a pruned model's inference honours them.

use std::collections::HashMap;
use std::path::Path;

use burn::store::pytorch_reader::PytorchReader;
use burn::store::{
    BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use serde::{Deserialize, Serialize};

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{DType, Tensor};

use crate::file_names::{FileTensors, Rules, torch_name};
use crate::{Arch, AttentionKind, ElaResNet, ElaResNetConfig, ModelError, SkipMode};

/// Metadata key of the JSON model description.
pub const META_CONFIG: &str = "ela.config";
/// Metadata key of the JSON skip-flag array.
pub const META_SKIP_FLAGS: &str = "ela.skip_flags";

/// Other codebases' PyTorch names → ours (applied before [`FROM_TORCH`]).
const FROM_OFFICIAL: [(&str, &str); 11] = [
    (r"^module\.", ""),
    (r"^stages\.0\.", "layer1."),
    (r"^stages\.1\.", "layer2."),
    (r"^stages\.2\.", "layer3."),
    (r"^stages\.3\.", "layer4."),
    (r"\.mrla\.mrla\.", ".mrla."),
    (r"^conv1\.0\.", "stem.conv_a."),
    (r"^conv1\.1\.", "stem.bn_a."),
    (r"^conv1\.3\.", "stem.conv_b."),
    (r"^conv1\.4\.", "stem.bn_b."),
    (r"^conv1\.6\.", "conv1."),
];
/// Deep-stem Burn paths → the official `nn.Sequential` names (applied before [`TO_TORCH`]; the
/// first rule must run before the others).
const TO_TORCH_DEEP_STEM: [(&str, &str); 5] = [
    (r"^conv1\.", "conv1.6."),
    (r"^stem\.conv_a\.", "conv1.0."),
    (r"^stem\.bn_a\.", "conv1.1."),
    (r"^stem\.conv_b\.", "conv1.3."),
    (r"^stem\.bn_b\.", "conv1.4."),
];
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
    /// ResNet family (files written before ImageNet models existed are CIFAR).
    #[serde(default)]
    pub arch: Arch,
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
    /// Whether the stem is the deep MRLA-B stem.
    #[serde(default)]
    pub deep_stem: bool,
    /// ImageNet bottlenecks' width per group.
    #[serde(default = "default_width_per_group")]
    pub width_per_group: usize,
}

fn default_width_per_group() -> usize {
    64
}

impl ModelDescription {
    /// The configuration that builds this architecture.
    pub fn config(&self) -> ElaResNetConfig {
        ElaResNetConfig::new(self.depth, self.num_classes)
            .with_arch(self.arch)
            .with_deep_stem(Some(self.deep_stem))
            .with_width_per_group(self.width_per_group)
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

/// The header of the safetensors file at `path`: tensor names, shapes and the metadata.
fn read_header(path: &Path) -> Result<safetensors::tensor::Metadata, ModelError> {
    let err = |reason: String| ModelError::Weights {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| err(format!("not a valid safetensors file: {e}")))?;
    Ok(header)
}

/// `module` with every float parameter and buffer (BatchNorm statistics included) of another
/// float type than `dtype` converted to it.
fn cast_floats<M: Module>(module: M, dtype: DType) -> M {
    struct Cast(DType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            if param.val().dtype() == dtype {
                param
            } else {
                // A new leaf: the cast itself is no step of any later gradient.
                param.map(|t| {
                    let tracked = t.is_require_grad();
                    t.cast(dtype).detach().set_require_grad(tracked)
                })
            }
        }
    }
    module.map(&mut Cast(dtype))
}

/// Reads the metadata of a safetensors file without loading its tensors.
pub fn read_metadata(path: &Path) -> Result<HashMap<String, String>, ModelError> {
    Ok(read_header(path)?.metadata().clone().unwrap_or_default())
}

impl ElaResNet {
    /// The remap rules from module paths to PyTorch names, in order: the official deep stem's
    /// `nn.Sequential` indices where the model has it, then [`TO_TORCH`].
    fn export_rules(&self) -> Vec<(&'static str, &'static str)> {
        let deep: &[(&str, &str)] = if self.has_deep_stem() {
            &TO_TORCH_DEEP_STEM
        } else {
            &[]
        };
        deep.iter().chain(&TO_TORCH).copied().collect()
    }

    /// The architecture of this model.
    pub fn description(&self) -> ModelDescription {
        ModelDescription {
            arch: self.arch(),
            depth: self.depth(),
            num_classes: self.num_classes(),
            in_channels: self.in_channels(),
            attention: self.attention(),
            dim_per_head: self.layer1[0].mrla.as_ref().map_or(
                ElaResNetConfig::official_dim_per_head(self.arch(), self.attention()),
                |m| m.dim_per_head,
            ),
            skip_mode: self.skip_mode(),
            deep_stem: self.has_deep_stem(),
            width_per_group: self.width_per_group(),
        }
    }

    /// Writes the parameters and BN statistics with PyTorch names, plus the architecture and
    /// skip flags as metadata.
    pub fn save_safetensors(&self, path: &Path) -> Result<(), ModelError> {
        let description = serde_json::to_string(&self.description()).expect("serializable");
        let flags = serde_json::to_string(&self.skip_flags()).expect("serializable");
        let mut store = self
            .export_rules()
            .into_iter()
            .fold(SafetensorsStore::from_file(path), |s, (a, b)| {
                s.with_key_remapping(a, b)
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
        self.load_pytorch(path, strict)
    }

    /// Loads a PyTorch checkpoint: a `.pth`/`.pt`/`.pth.tar` file (torchvision's bare state
    /// dict, or a dict holding it under `state_dict`, `model` or `model_state_dict`, with or
    /// without the `module.` prefix of `DataParallel`), or a safetensors file. Names of the
    /// official MRLA models are mapped onto ours (see the module docs).
    pub fn load_pytorch(&mut self, path: &Path, strict: bool) -> Result<LoadReport, ModelError> {
        self.load_checkpoint(
            path,
            &LoadOptions {
                strict,
                ..LoadOptions::default()
            },
        )
    }

    /// [`load_pytorch`](Self::load_pytorch) with options: `skip_head` leaves the linear head
    /// as initialized (fine-tuning with another number of classes) and leaves `fc.*` out of
    /// the report.
    pub fn load_checkpoint(
        &mut self,
        path: &Path,
        options: &LoadOptions,
    ) -> Result<LoadReport, ModelError> {
        let err = |reason: String| ModelError::Weights {
            path: path.to_path_buf(),
            reason,
        };
        // The model's float type, before the file's tensors replace its parameters.
        let dtype = self.fc.weight.val().dtype();
        let not_head: fn(&str, &str) -> bool = |path, _| !path.starts_with("fc.");
        let remaps = || FROM_OFFICIAL.iter().chain(&FROM_TORCH);
        let rules = Rules::new(&remaps().copied().collect::<Vec<_>>());
        let (result, meta, file) = if is_safetensors(path)? {
            // One read of the header for the metadata and the tensors' names and shapes.
            let header = read_header(path)?;
            let meta = header.metadata().clone().unwrap_or_default();
            let shapes = header
                .tensors()
                .into_iter()
                .map(|(name, info)| (name, info.shape.clone()));
            let file = FileTensors::new(shapes, None, &rules);
            let mut store = remaps()
                .fold(SafetensorsStore::from_file(path), |s, (a, b)| {
                    s.with_key_remapping(*a, *b)
                })
                .with_from_adapter(PyTorchToBurnAdapter)
                .map_indices_contiguous(false)
                .allow_partial(true)
                // Errors are reported below, in the file's names and shapes.
                .validate(false);
            if options.skip_head {
                store = store.with_predicate(not_head);
            }
            let result = self.load_from(&mut store).map_err(|e| err(e.to_string()))?;
            (result, meta, file)
        } else {
            let reader = PytorchReader::new(path)
                .map_err(|e| err(format!("not a PyTorch checkpoint: {e}")))?;
            let keys = reader.keys();
            let top = ["state_dict", "model_state_dict", "model"]
                .into_iter()
                .find(|k| keys.iter().any(|n| n.starts_with(&format!("{k}."))));
            let mut store = remaps()
                .fold(PytorchStore::from_file(path), |s, (a, b)| {
                    s.with_key_remapping(*a, *b)
                })
                .map_indices_contiguous(false)
                .allow_partial(true)
                // Errors are reported below, in the file's names and shapes.
                .validate(false);
            if let Some(key) = top {
                store = store.with_top_level_key(key);
            }
            let shapes = reader
                .tensors()
                .iter()
                .map(|(name, t)| (name.clone(), t.shape().to_vec()));
            let file = FileTensors::new(shapes, top, &rules);
            drop(reader);
            if options.skip_head {
                store = store.with_predicate(not_head);
            }
            let result = self.load_from(&mut store).map_err(|e| err(e.to_string()))?;
            (result, HashMap::new(), file)
        };
        if !result.errors.is_empty() {
            let errors: Vec<String> = result.errors.iter().map(|e| file.describe(e)).collect();
            return Err(err(errors.join("; ")));
        }
        // A file of another float type (a half-precision run's, an f64 export) is converted to
        // the model's, as PyTorch's `load_state_dict` copies into the parameters' dtype.
        *self = cast_floats(self.clone(), dtype);
        let head = |k: &str| options.skip_head && k.starts_with("fc.");
        let export = Rules::new(&self.export_rules());
        let missing: Vec<String> = result
            .missing
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| !head(p))
            .map(|p| torch_name(&p, &export))
            .collect();
        let unused: Vec<String> = result
            .unused
            .iter()
            .filter(|k| !k.ends_with("num_batches_tracked") && !head(k))
            .map(|k| file.name_of(k))
            .collect();
        if options.strict && !(missing.is_empty() && unused.is_empty()) {
            return Err(err(format!(
                "does not match the model ({} ResNet-{}, attention {}): missing {:?}, unused {:?}",
                self.arch(),
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
                if !options.ignore_skip_flags {
                    self.set_skip_flags(&flags)
                        .map_err(|e| err(e.to_string()))?;
                }
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

/// How [`ElaResNet::load_checkpoint`] loads.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Missing parameters and unused tensors are errors, not only reported.
    pub strict: bool,
    /// Leave the linear head (`fc.*`) as initialized.
    pub skip_head: bool,
    /// Leave the model's skip flags as they are, whatever the file's metadata holds (they are
    /// still reported in [`LoadReport::skip_flags`]).
    pub ignore_skip_flags: bool,
}

/// Whether `path` holds a safetensors file (an 8-byte little-endian header length, then a
/// JSON object), as opposed to a PyTorch pickle or zip.
pub fn is_safetensors(path: &Path) -> Result<bool, ModelError> {
    use std::io::Read;
    let err = |e: std::io::Error| ModelError::Weights {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut head = [0u8; 9];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(err)?;
    Ok(n == 9 && head[8] == b'{' && u64::from_le_bytes(head[..8].try_into().expect("8 bytes")) > 1)
}
