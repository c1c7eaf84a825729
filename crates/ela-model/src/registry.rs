//! One registry of every backbone × attention variant, under canonical names.
//!
//! ImageNet models use the upstream names: torchvision's `resnet18` … `resnet152` and the
//! official MRLA code's `resnet50_mrlab` / `resnet50_mrlal` (`resnet/models/resnet_mrla_base.py`,
//! `resnet_mrla_light.py`); ELA is `resnet50_ela`, and the channel-attention baselines the
//! official code also offers are `resnet50_se` and `resnet50_eca`. CIFAR models carry a
//! `cifar_` prefix, because ResNet-101 is both an ImageNet depth and a CIFAR one (9·11 + 2):
//! `cifar_resnet56`, `cifar_resnet56_mrlab`, `cifar_resnet56_ela`, `cifar_resnet56_bam_block`, ….
//!
//! [`find`] accepts any depth the family has (`cifar_resnet29_ela`); [`all`] lists the
//! canonical depths (CIFAR 20, 56, 110; ImageNet 18, 34, 50, 101, 152).

use serde::{Deserialize, Serialize};

use crate::resnet::IMAGENET_DEPTHS;
use crate::{ALL_ATTENTION, Arch, AttentionKind, ElaResNetConfig, ModelError};

/// The CIFAR depths of the paper's tables.
pub const CIFAR_DEPTHS: [usize; 3] = [20, 56, 110];

/// Attention variants registered for the ImageNet ResNets (those of the official code, and the
/// RLA and non-local baselines of Tables 2 and 5).
const IMAGENET_ATTENTION: [AttentionKind; 7] = [
    AttentionKind::None,
    AttentionKind::MrlaB,
    AttentionKind::MrlaL,
    AttentionKind::Se,
    AttentionKind::Eca,
    AttentionKind::Rla,
    AttentionKind::Nl,
];

/// One registered model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Canonical name.
    pub name: String,
    /// ResNet family.
    pub arch: Arch,
    /// Depth.
    pub depth: usize,
    /// Attention of every block (ELA models are MRLA-B models).
    pub attention: AttentionKind,
    /// Whether this is ELA: MRLA-B whose retrievals the trainer prunes.
    pub ela: bool,
}

impl ModelEntry {
    /// The entry of one variant (no check that the depth exists; [`config`](Self::config)
    /// checks it when the model is built).
    pub fn new(arch: Arch, depth: usize, attention: AttentionKind, ela: bool) -> Self {
        let suffix = if ela {
            "_ela".to_string()
        } else {
            match attention {
                AttentionKind::None => String::new(),
                AttentionKind::MrlaB => "_mrlab".into(),
                AttentionKind::MrlaL => "_mrlal".into(),
                other => format!("_{}", other.name().replace('-', "_")),
            }
        };
        let prefix = match arch {
            Arch::Cifar => "cifar_",
            Arch::Imagenet => "",
        };
        Self {
            name: format!("{prefix}resnet{depth}{suffix}"),
            arch,
            depth,
            attention: if ela { AttentionKind::MrlaB } else { attention },
            ela,
        }
    }

    /// The model's configuration as the official code builds it: head size 32 for ImageNet
    /// MRLA-L and 16 otherwise, the deep stem for ImageNet MRLA-B/ELA, and the last BN of each
    /// block zero-initialized for ImageNet (SPEC §4).
    pub fn config(&self, num_classes: usize) -> ElaResNetConfig {
        ElaResNetConfig::new(self.depth, num_classes)
            .with_arch(self.arch)
            .with_attention(self.attention)
            .with_dim_per_head(ElaResNetConfig::official_dim_per_head(
                self.arch,
                self.attention,
            ))
            .with_zero_init_last_bn(self.arch == Arch::Imagenet)
    }
}

/// Every registered variant at the canonical depths, CIFAR first.
pub fn all() -> Vec<ModelEntry> {
    let mut entries = Vec::new();
    let variants = |attention: &[AttentionKind]| {
        attention
            .iter()
            .map(|&a| (a, false))
            .chain([(AttentionKind::MrlaB, true)])
            .collect::<Vec<_>>()
    };
    for depth in CIFAR_DEPTHS {
        for (attention, ela) in variants(&ALL_ATTENTION) {
            entries.push(ModelEntry::new(Arch::Cifar, depth, attention, ela));
        }
    }
    for depth in IMAGENET_DEPTHS {
        for (attention, ela) in variants(&IMAGENET_ATTENTION) {
            entries.push(ModelEntry::new(Arch::Imagenet, depth, attention, ela));
        }
    }
    entries
}

/// The entry of a model name: any depth of the family, any attention.
pub fn find(name: &str) -> Result<ModelEntry, ModelError> {
    let unknown = |reason: String| ModelError::Option {
        name: "model",
        reason: format!(
            "unknown model '{name}': {reason}; names look like resnet50, resnet50_mrlab, \
             resnet101_ela or cifar_resnet56_mrlal (attention suffixes: {})",
            suffixes().join(", ")
        ),
    };
    let (arch, rest) = match name.strip_prefix("cifar_resnet") {
        Some(rest) => (Arch::Cifar, rest),
        None => match name.strip_prefix("resnet") {
            Some(rest) => (Arch::Imagenet, rest),
            None => {
                return Err(unknown(
                    "it does not start with resnet or cifar_resnet".into(),
                ));
            }
        },
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let depth: usize = rest[..digits]
        .parse()
        .map_err(|_| unknown("no depth after 'resnet'".into()))?;
    arch.stages(depth)?;
    let suffix = &rest[digits..];
    [(AttentionKind::MrlaB, true)]
        .into_iter()
        .chain(ALL_ATTENTION.iter().map(|&a| (a, false)))
        .map(|(a, ela)| ModelEntry::new(arch, depth, a, ela))
        .find(|e| e.name == name)
        .ok_or_else(|| unknown(format!("no attention '{suffix}'")))
}

fn suffixes() -> Vec<String> {
    std::iter::once("_ela".to_string())
        .chain(ALL_ATTENTION.iter().map(|&a| {
            let e = ModelEntry::new(Arch::Imagenet, 50, a, false);
            e.name.trim_start_matches("resnet50").to_string()
        }))
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_follow_upstream() {
        for entry in all() {
            assert_eq!(find(&entry.name).unwrap(), entry, "{}", entry.name);
        }
        assert_eq!(
            find("resnet50_mrlal").unwrap().attention,
            AttentionKind::MrlaL
        );
        let ela = find("cifar_resnet29_ela").unwrap();
        assert!(ela.ela && ela.attention == AttentionKind::MrlaB && ela.depth == 29);
        assert_eq!(find("cifar_resnet101").unwrap().arch, Arch::Cifar);
        assert_eq!(find("resnet101").unwrap().arch, Arch::Imagenet);
        assert_eq!(all().len(), 3 * 13 + 5 * 8);
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        let msg = |n: &str| find(n).unwrap_err().to_string();
        assert!(
            msg("resnet51").contains("18, 34, 50, 101 or 152"),
            "{}",
            msg("resnet51")
        );
        assert!(msg("resnet50_foo").contains("no attention '_foo'"));
        assert!(msg("vgg16").contains("does not start with"));
        assert!(msg("cifar_resnet21").contains("21"));
    }

    #[test]
    fn official_choices_are_applied() {
        let light = find("resnet50_mrlal").unwrap().config(1000);
        assert_eq!(light.dim_per_head, 32);
        assert!(!light.uses_deep_stem() && light.zero_init_last_bn);
        let base = find("resnet50_ela").unwrap().config(1000);
        assert!(base.uses_deep_stem() && base.dim_per_head == 16);
        let cifar = find("cifar_resnet56_mrlal").unwrap().config(100);
        assert!(cifar.dim_per_head == 16 && !cifar.zero_init_last_bn);
    }
}
