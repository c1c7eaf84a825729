//! A weights file's own tensor names and shapes, for what loading it reports.
//!
//! Loading renames the file's tensors onto Burn's module paths (the remap tables of
//! [`crate::weights`], then burn-store's PyTorch adapter: BatchNorm `weight`/`bias` become
//! `gamma`/`beta`, linear weights are transposed). Errors and reports speak of the file's names
//! and shapes instead, as the user sees them in PyTorch; a model parameter the file lacks is
//! named as a PyTorch state dict of this model would name it.

use burn::store::ApplyError;
use regex::Regex;

/// One tensor of the file.
#[derive(Debug, Clone)]
struct FileTensor {
    /// The name in the file.
    name: String,
    /// The shape in the file.
    shape: Vec<usize>,
    /// The module path the remap tables give it.
    path: String,
}

/// The tensors of a weights file, by the module path each one is loaded into.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileTensors {
    tensors: Vec<FileTensor>,
}

/// Remap rules (regex, replacement), compiled once, applied in order as burn-store's key
/// remapper applies them.
pub(crate) struct Rules(Vec<(Regex, &'static str)>);

impl Rules {
    /// Compiles a remap table.
    pub(crate) fn new(table: &[(&str, &'static str)]) -> Self {
        Self(
            table
                .iter()
                .map(|(pattern, to)| {
                    let re = Regex::new(pattern).expect("the remap tables are valid regexes");
                    (re, *to)
                })
                .collect(),
        )
    }

    /// `name` after every rule.
    fn apply(&self, name: &str) -> String {
        self.0.iter().fold(name.to_string(), |name, (re, to)| {
            re.replace_all(&name, *to).into_owned()
        })
    }
}

/// The file's form of a shape the adapter gave in Burn's layout: linear weights (the only
/// rank-2 weights of these models) are stored transposed in PyTorch files.
fn file_layout(path: &str, shape: &[usize]) -> Vec<usize> {
    if shape.len() == 2 && path.ends_with("weight") {
        vec![shape[1], shape[0]]
    } else {
        shape.to_vec()
    }
}

impl FileTensors {
    /// The file's `(name, shape)` pairs; `prefix` is a top-level key stripped before loading
    /// (`state_dict.`), `rules` the remap tables in the order the store applies them.
    pub(crate) fn new(
        tensors: impl IntoIterator<Item = (String, Vec<usize>)>,
        prefix: Option<&str>,
        rules: &Rules,
    ) -> Self {
        let tensors = tensors
            .into_iter()
            .map(|(name, shape)| {
                let stripped = prefix
                    .and_then(|p| name.strip_prefix(&format!("{p}.")))
                    .unwrap_or(&name)
                    .to_string();
                FileTensor {
                    path: rules.apply(&stripped),
                    name: stripped,
                    shape,
                }
            })
            .collect();
        Self { tensors }
    }

    /// The file tensor loaded into module path `path` (BatchNorm's `gamma`/`beta` are the
    /// file's `weight`/`bias`).
    fn at(&self, path: &str) -> Option<&FileTensor> {
        let renamed = path
            .strip_suffix(".gamma")
            .map(|p| format!("{p}.weight"))
            .or_else(|| path.strip_suffix(".beta").map(|p| format!("{p}.bias")));
        self.tensors.iter().find(|t| t.path == path).or_else(|| {
            renamed
                .as_deref()
                .and_then(|r| self.tensors.iter().find(|t| t.path == r))
        })
    }

    /// The file's name for the remapped name `path` (an unused tensor), or `path` itself.
    pub(crate) fn name_of(&self, path: &str) -> String {
        self.at(path)
            .map_or_else(|| path.to_string(), |t| t.name.clone())
    }

    /// An applier error in the file's names and shapes.
    pub(crate) fn describe(&self, error: &ApplyError) -> String {
        let name = |path: &str| self.name_of(path);
        match error {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => {
                let model = file_layout(path, expected.as_slice());
                let file = self
                    .at(path)
                    .map_or_else(|| file_layout(path, found.as_slice()), |t| t.shape.clone());
                format!(
                    "tensor `{}` has shape {file:?} in the file, the model's is {model:?}",
                    name(path)
                )
            }
            ApplyError::DTypeMismatch {
                path,
                expected,
                found,
            } => format!(
                "tensor `{}` is {found:?} in the file, the model needs {expected:?}",
                name(path)
            ),
            ApplyError::AdapterError { path, message }
            | ApplyError::LoadError { path, message } => {
                format!("tensor `{}`: {message}", name(path))
            }
        }
    }
}

/// The PyTorch state-dict name of this crate's module path `path` (`layer1.0.mrla.wq.weight` →
/// `layer1.0.mrla.Wq.weight`, `bn1.gamma` → `bn1.weight`), through `rules` (the export tables).
pub(crate) fn torch_name(path: &str, rules: &Rules) -> String {
    let renamed = path
        .strip_suffix(".gamma")
        .map(|p| format!("{p}.weight"))
        .or_else(|| path.strip_suffix(".beta").map(|p| format!("{p}.bias")))
        .unwrap_or_else(|| path.to_string());
    rules.apply(&renamed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Shape;

    #[test]
    fn errors_speak_of_the_files_names_and_shapes() {
        let rules = Rules::new(&[(r"^module\.", ""), (r"\.mrla\.Wq\.", ".mrla.wq.")]);
        let file = FileTensors::new(
            [
                ("state_dict.module.fc.weight".to_string(), vec![1000, 512]),
                ("state_dict.module.bn1.weight".to_string(), vec![64]),
                (
                    "state_dict.module.layer1.0.mrla.Wq.weight".to_string(),
                    vec![4, 64, 1],
                ),
            ],
            Some("state_dict"),
            &rules,
        );
        let e = ApplyError::ShapeMismatch {
            path: "fc.weight".into(),
            expected: Shape::new([512, 10]),
            found: Shape::new([512, 1000]),
        };
        assert_eq!(
            file.describe(&e),
            "tensor `module.fc.weight` has shape [1000, 512] in the file, the model's is [10, 512]"
        );
        let e = ApplyError::ShapeMismatch {
            path: "bn1.gamma".into(),
            expected: Shape::new([32]),
            found: Shape::new([64]),
        };
        assert!(file.describe(&e).starts_with("tensor `module.bn1.weight`"));
        assert_eq!(
            file.name_of("layer1.0.mrla.wq.weight"),
            "module.layer1.0.mrla.Wq.weight"
        );
        assert_eq!(file.name_of("not.in.file"), "not.in.file");
        let export = Rules::new(&[(r"\.mrla\.wq\.", ".mrla.Wq.")]);
        assert_eq!(
            torch_name("layer2.1.bn_mrla.gamma", &export),
            "layer2.1.bn_mrla.weight"
        );
        assert_eq!(
            torch_name("layer2.1.mrla.wq.weight", &export),
            "layer2.1.mrla.Wq.weight"
        );
    }
}
