//! From redundancy scores to skip decisions: EBQM (SPEC §3.3) and the ablations of §3.4.

use serde::{Deserialize, Serialize};
use statrs::function::beta::beta_reg;
use statrs::function::erf::erfc;
use statrs::function::gamma::gamma_lr;

use crate::PruneError;

/// Below this spread of candidate scores no min-max normalization is meaningful (SPEC §3.3).
const MIN_RANGE: f64 = 1e-12;

/// Parameters of the Enhanced Beta Quantile Mapping (Algorithm 1 of the paper).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EbqmParams {
    /// Beta shape α of the mapping `I_s(α, β)`.
    pub alpha: f64,
    /// Beta shape β of the mapping `I_s(α, β)`.
    pub beta: f64,
    /// Skip a candidate whose mapped value is below τ.
    pub tau: f64,
    /// Candidates are the blocks with a score at or below the q-quantile of all scores.
    pub quantile: f64,
}

impl EbqmParams {
    /// Checked parameters: α, β > 0, τ ∈ [0, 1], q ∈ (0, 1].
    pub fn new(alpha: f64, beta: f64, tau: f64, quantile: f64) -> Result<Self, PruneError> {
        for (name, value) in [("alpha", alpha), ("beta", beta)] {
            if !(value.is_finite() && value > 0.0) {
                return Err(PruneError::BetaShape { name, value });
            }
        }
        check_tau(tau)?;
        if !(quantile > 0.0 && quantile <= 1.0) {
            return Err(PruneError::Quantile(quantile));
        }
        Ok(Self {
            alpha,
            beta,
            tau,
            quantile,
        })
    }

    /// CIFAR defaults: α = 5, β = 1, τ = 0.3, q = 0.5.
    pub fn cifar() -> Self {
        Self::new(5.0, 1.0, 0.3, 0.5).expect("valid defaults")
    }

    /// ImageNet defaults: α = 2, β = 5, τ = 0.25, q = 0.5.
    pub fn imagenet() -> Self {
        Self::new(2.0, 5.0, 0.25, 0.5).expect("valid defaults")
    }

    /// COCO detection defaults: α = 2, β = 5, τ = 0.2, q = 0.5.
    pub fn coco() -> Self {
        Self::new(2.0, 5.0, 0.2, 0.5).expect("valid defaults")
    }
}

fn check_tau(tau: f64) -> Result<(), PruneError> {
    if (0.0..=1.0).contains(&tau) {
        Ok(())
    } else {
        Err(PruneError::Tau(tau))
    }
}

/// The alternatives to EBQM's Beta CDF in step 4 of Algorithm 1 (SPEC §3.4; the paper's
/// Tables 6 and 7). Each maps the min-max normalized candidate scores `s` to `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mapping {
    /// Standard normal CDF Φ of the z-scored values (population standard deviation over S).
    Normal,
    /// Gamma(shape k, scale θ) CDF, `P(k, s/θ)` (GQM).
    Gamma {
        /// Shape k > 0.
        shape: f64,
        /// Scale θ > 0.
        scale: f64,
    },
    /// Exponential(rate λ) CDF, `1 − e^{−λ s}` (EQM).
    Exponential {
        /// Rate λ > 0.
        rate: f64,
    },
    /// Softmax over the candidates S.
    Softmax,
    /// Logistic sigmoid of the z-scored values.
    Sigmoid,
}

impl Mapping {
    /// GQM's default shape k (*ours*; the paper gives no values).
    pub const DEFAULT_GAMMA_SHAPE: f64 = 2.0;
    /// GQM's default scale θ (*ours*).
    pub const DEFAULT_GAMMA_SCALE: f64 = 0.5;
    /// EQM's default rate λ (*ours*).
    pub const DEFAULT_EXPONENTIAL_RATE: f64 = 3.0;

    /// Checked parameters: Gamma shape and scale and the exponential rate finite and > 0.
    pub fn checked(self) -> Result<Self, PruneError> {
        let positive = |name: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(PruneError::Parameter {
                    name,
                    reason: format!("must be a finite number > 0, got {v}"),
                })
            }
        };
        match self {
            Self::Gamma { shape, scale } => {
                positive("gamma shape", shape)?;
                positive("gamma scale", scale)?;
            }
            Self::Exponential { rate } => positive("exponential rate", rate)?,
            Self::Normal | Self::Softmax | Self::Sigmoid => {}
        }
        Ok(self)
    }

    /// Short name: `nqm`, `gqm`, `eqm`, `softmax`, `sigmoid`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Normal => "nqm",
            Self::Gamma { .. } => "gqm",
            Self::Exponential { .. } => "eqm",
            Self::Softmax => "softmax",
            Self::Sigmoid => "sigmoid",
        }
    }

    /// Maps the normalized values `s` (all of S at once: softmax and the z-scores need them).
    pub fn map(&self, s: &[f64]) -> Vec<f64> {
        let n = s.len().max(1) as f64;
        let mean = s.iter().sum::<f64>() / n;
        let std = (s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let z = |v: f64| if std > 0.0 { (v - mean) / std } else { 0.0 };
        match *self {
            Self::Normal => s
                .iter()
                .map(|&v| 0.5 * erfc(-z(v) / std::f64::consts::SQRT_2))
                .collect(),
            // P(k, 0) = 0; statrs rejects x = 0.
            Self::Gamma { shape, scale } => s
                .iter()
                .map(|&v| {
                    if v > 0.0 {
                        gamma_lr(shape, v / scale)
                    } else {
                        0.0
                    }
                })
                .collect(),
            Self::Exponential { rate } => s.iter().map(|&v| 1.0 - (-rate * v).exp()).collect(),
            Self::Softmax => {
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|&v| (v - max).exp()).collect();
                let total: f64 = e.iter().sum();
                e.into_iter().map(|v| v / total).collect()
            }
            Self::Sigmoid => s.iter().map(|&v| 1.0 / (1.0 + (-z(v)).exp())).collect(),
        }
    }
}

/// How scores become skip decisions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum PruneMethod {
    /// Enhanced Beta Quantile Mapping (the paper's method).
    Ebqm(EbqmParams),
    /// Min-max normalize all candidates, skip those below τ (Table 4 ablation).
    Threshold {
        /// Threshold on the normalized score.
        tau: f64,
    },
    /// Skip the k candidates with the smallest scores (Table 4 ablation).
    Fixed {
        /// Number of blocks to skip per decision.
        k: usize,
    },
    /// EBQM's quantile, normalization and threshold with another mapping in place of the Beta
    /// CDF (Tables 6 and 7 ablations).
    QuantileMap {
        /// The mapping of step 4.
        mapping: Mapping,
        /// Skip a candidate whose mapped value is below τ.
        tau: f64,
        /// Candidate quantile q.
        quantile: f64,
    },
}

impl PruneMethod {
    /// A checked threshold method.
    pub fn threshold(tau: f64) -> Result<Self, PruneError> {
        check_tau(tau)?;
        Ok(Self::Threshold { tau })
    }

    /// A checked quantile-mapping ablation: valid mapping parameters, τ ∈ [0, 1], q ∈ (0, 1].
    pub fn quantile_map(mapping: Mapping, tau: f64, quantile: f64) -> Result<Self, PruneError> {
        check_tau(tau)?;
        if !(quantile > 0.0 && quantile <= 1.0) {
            return Err(PruneError::Quantile(quantile));
        }
        Ok(Self::QuantileMap {
            mapping: mapping.checked()?,
            tau,
            quantile,
        })
    }

    /// Short name: `ebqm`, `threshold`, `fixed`, or the mapping's (`nqm`, `gqm`, `eqm`,
    /// `softmax`, `sigmoid`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ebqm(_) => "ebqm",
            Self::Threshold { .. } => "threshold",
            Self::Fixed { .. } => "fixed",
            Self::QuantileMap { mapping, .. } => mapping.name(),
        }
    }

    /// The mapped value of one normalized score `s` ∈ [0, 1], for methods whose mapping is a
    /// fixed curve: the Beta CDF (EBQM), the Gamma and Exponential CDFs, and the identity
    /// (threshold). `None` for mappings that depend on the whole set S (Normal and Sigmoid
    /// z-score it, Softmax normalizes over it) and for `fixed`, which maps nothing.
    pub fn curve(&self, s: f64) -> Option<f64> {
        match *self {
            Self::Ebqm(p) => Some(beta_reg(p.alpha, p.beta, s)),
            Self::Threshold { .. } => Some(s),
            Self::QuantileMap {
                mapping: mapping @ (Mapping::Gamma { .. } | Mapping::Exponential { .. }),
                ..
            } => mapping.map(&[s]).first().copied(),
            Self::QuantileMap { .. } | Self::Fixed { .. } => None,
        }
    }

    /// The threshold τ on the mapped (or normalized) value, for methods that have one.
    pub fn tau(&self) -> Option<f64> {
        match *self {
            Self::Ebqm(p) => Some(p.tau),
            Self::Threshold { tau } | Self::QuantileMap { tau, .. } => Some(tau),
            Self::Fixed { .. } => None,
        }
    }

    /// Decides which blocks to skip from one window's scores.
    ///
    /// `scores[i]` is block i's averaged redundancy score, `None` for blocks that have none
    /// (a stage's first block, an already skipped block). Only blocks with a score are
    /// candidates. Scores must be finite and non-negative.
    pub fn decide(&self, scores: &[Option<f64>]) -> Result<Decision, PruneError> {
        for (block, score) in scores.iter().enumerate() {
            if let Some(value) = *score
                && !(value.is_finite() && value >= 0.0)
            {
                return Err(PruneError::Score { block, value });
            }
        }
        let candidates: Vec<(usize, f64)> = scores
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|v| (i, v)))
            .collect();
        let mut decision = Decision::empty(scores.len());
        match *self {
            Self::Ebqm(p) => quantile_map(&candidates, p.quantile, p.tau, &mut decision, |s| {
                s.iter().map(|&v| beta_reg(p.alpha, p.beta, v)).collect()
            }),
            Self::QuantileMap {
                mapping,
                tau,
                quantile,
            } => quantile_map(&candidates, quantile, tau, &mut decision, |s| {
                mapping.map(s)
            }),
            Self::Threshold { tau } => {
                for (i, s) in min_max(&candidates) {
                    decision.normalized[i] = Some(s);
                    if s < tau {
                        decision.skip.push(i);
                    }
                }
            }
            Self::Fixed { k } => {
                let mut sorted = candidates;
                sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                decision.skip = sorted.iter().take(k).map(|&(i, _)| i).collect();
                decision.skip.sort_unstable();
            }
        }
        Ok(decision)
    }
}

/// Steps 1–5 of Algorithm 1 with the mapping `map` (applied to all normalized values of S).
fn quantile_map(
    candidates: &[(usize, f64)],
    quantile: f64,
    tau: f64,
    decision: &mut Decision,
    map: impl Fn(&[f64]) -> Vec<f64>,
) {
    if candidates.is_empty() {
        return;
    }
    let values: Vec<f64> = candidates.iter().map(|&(_, v)| v).collect();
    let q = quantile_linear(&values, quantile);
    decision.quantile = Some(q);
    let below: Vec<(usize, f64)> = candidates
        .iter()
        .copied()
        .filter(|&(_, v)| v <= q)
        .collect();
    let normalized = min_max(&below);
    let s: Vec<f64> = normalized.iter().map(|&(_, v)| v).collect();
    for ((i, s), m) in normalized.into_iter().zip(map(&s)) {
        decision.normalized[i] = Some(s);
        decision.mapped[i] = Some(m);
        if m < tau {
            decision.skip.push(i);
        }
    }
}

/// Min-max normalized values of `(index, score)` pairs; empty when fewer than two values or
/// no spread (the SPEC §3.3 edge cases: then nothing is skipped).
fn min_max(values: &[(usize, f64)]) -> Vec<(usize, f64)> {
    if values.len() < 2 {
        return Vec::new();
    }
    let min = values.iter().map(|v| v.1).fold(f64::INFINITY, f64::min);
    let max = values.iter().map(|v| v.1).fold(f64::NEG_INFINITY, f64::max);
    if max - min < MIN_RANGE {
        return Vec::new();
    }
    values
        .iter()
        .map(|&(i, v)| (i, ((v - min) / (max - min)).clamp(0.0, 1.0)))
        .collect()
}

/// The q-quantile with linear interpolation between order statistics (NumPy's default).
///
/// # Panics
/// If `values` is empty.
pub fn quantile_linear(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// One window's decision, per block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The q-quantile Q of the candidate scores (EBQM and the quantile-mapping ablations).
    pub quantile: Option<f64>,
    /// Min-max normalized score of every block that was normalized.
    pub normalized: Vec<Option<f64>>,
    /// Mapped value of every block that was mapped (`I_s(α, β)` for EBQM; EBQM and the
    /// quantile-mapping ablations only).
    pub mapped: Vec<Option<f64>>,
    /// Blocks to skip, ascending, 0-based over all blocks.
    pub skip: Vec<usize>,
}

impl Decision {
    fn empty(num_blocks: usize) -> Self {
        Self {
            quantile: None,
            normalized: vec![None; num_blocks],
            mapped: vec![None; num_blocks],
            skip: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ebqm(alpha: f64, beta: f64, tau: f64, q: f64) -> PruneMethod {
        PruneMethod::Ebqm(EbqmParams::new(alpha, beta, tau, q).unwrap())
    }

    #[test]
    fn the_plotted_curve_is_the_mapping_decide_applies() {
        let scores: Vec<Option<f64>> =
            [None, Some(0.9), Some(0.1), Some(0.4), Some(0.2), Some(0.3)]
                .into_iter()
                .collect();
        let methods = [
            ebqm(5.0, 1.0, 0.3, 0.8),
            ebqm(2.0, 5.0, 0.25, 0.8),
            PruneMethod::threshold(0.3).unwrap(),
            PruneMethod::quantile_map(
                Mapping::Gamma {
                    shape: 2.0,
                    scale: 0.5,
                },
                0.3,
                0.8,
            )
            .unwrap(),
            PruneMethod::quantile_map(Mapping::Exponential { rate: 3.0 }, 0.3, 0.8).unwrap(),
        ];
        for m in methods {
            let d = m.decide(&scores).unwrap();
            let mut checked = 0;
            for (s, mapped) in d.normalized.iter().zip(&d.mapped) {
                if let Some(s) = s {
                    let want = mapped.unwrap_or(*s);
                    assert!((m.curve(*s).unwrap() - want).abs() < 1e-12, "{m:?} at {s}");
                    checked += 1;
                }
            }
            assert!(checked >= 3, "{m:?}");
            assert!(m.tau().is_some());
        }
        let set_dependent = PruneMethod::quantile_map(Mapping::Sigmoid, 0.3, 0.5).unwrap();
        assert_eq!(set_dependent.curve(0.5), None);
        assert_eq!(PruneMethod::Fixed { k: 1 }.tau(), None);
    }

    #[test]
    fn invalid_parameters_are_typed_errors() {
        assert!(matches!(
            EbqmParams::new(0.0, 1.0, 0.3, 0.5),
            Err(PruneError::BetaShape { name: "alpha", .. })
        ));
        assert!(matches!(
            EbqmParams::new(5.0, -1.0, 0.3, 0.5),
            Err(PruneError::BetaShape { name: "beta", .. })
        ));
        assert!(matches!(
            EbqmParams::new(5.0, f64::NAN, 0.3, 0.5),
            Err(PruneError::BetaShape { .. })
        ));
        assert_eq!(
            EbqmParams::new(5.0, 1.0, 1.5, 0.5),
            Err(PruneError::Tau(1.5))
        );
        assert_eq!(
            EbqmParams::new(5.0, 1.0, 0.3, 0.0),
            Err(PruneError::Quantile(0.0))
        );
        assert_eq!(
            EbqmParams::new(5.0, 1.0, 0.3, 1.01),
            Err(PruneError::Quantile(1.01))
        );
        assert!(EbqmParams::new(5.0, 1.0, 0.0, 1.0).is_ok());
        assert_eq!(PruneMethod::threshold(-0.1), Err(PruneError::Tau(-0.1)));
        let bad = ebqm(5.0, 1.0, 0.3, 0.5).decide(&[None, Some(f64::NAN)]);
        assert!(matches!(bad, Err(PruneError::Score { block: 1, .. })));
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        // np.quantile([3, 1, 2, 10], [0.5, 0.25, 0.9, 1.0]) -> [2.5, 1.75, 7.9, 10.0]
        let v = [3.0, 1.0, 2.0, 10.0];
        for (q, want) in [(0.5, 2.5), (0.25, 1.75), (0.9, 7.9), (1.0, 10.0)] {
            assert!((quantile_linear(&v, q) - want).abs() < 1e-12, "q={q}");
        }
        assert_eq!(quantile_linear(&[4.0], 0.5), 4.0);
    }

    // Golden values from an independent computation (numpy 2.4.6, scipy 1.17.1), run once:
    //
    //   import numpy as np; from scipy.special import betainc
    //   D = np.array([0.12, 0.03, 0.40, 0.07, 0.25, 0.05, 0.31, 0.09])   # block 0: None
    //   def ebqm(D, a, b, tau, q):
    //       Q = np.quantile(D, q); S = D <= Q
    //       s = (D[S] - D[S].min()) / (D[S].max() - D[S].min()); m = betainc(a, b, s)
    //       return Q, s, m, np.nonzero(S)[0][m < tau] + 1
    //   print(ebqm(D, 5, 1, 0.3, 0.5)); print(ebqm(D, 2, 5, 0.25, 0.5)); print(ebqm(D, 2, 5, 0.25, 0.8))
    const D: [f64; 8] = [0.12, 0.03, 0.40, 0.07, 0.25, 0.05, 0.31, 0.09];

    fn scores() -> Vec<Option<f64>> {
        std::iter::once(None)
            .chain(D.iter().map(|&d| Some(d)))
            .collect()
    }

    #[test]
    fn ebqm_matches_scipy_cifar_defaults() {
        let d = ebqm(5.0, 1.0, 0.3, 0.5).decide(&scores()).unwrap();
        assert!((d.quantile.unwrap() - 0.105).abs() < 1e-12);
        // S = blocks 2, 4, 6, 8 (D = 0.03, 0.07, 0.05, 0.09); s = 0, 2/3, 1/3, 1
        let want_s = [(2, 0.0), (4, 2.0 / 3.0), (6, 1.0 / 3.0), (8, 1.0)];
        let want_m = [
            (2, 0.0),
            (4, 0.13168724279835411),
            (6, 0.004115226337448565),
            (8, 1.0),
        ];
        for ((i, s), (_, m)) in want_s.iter().zip(want_m) {
            assert!((d.normalized[*i].unwrap() - s).abs() < 1e-12, "s of {i}");
            assert!((d.mapped[*i].unwrap() - m).abs() < 1e-12, "m of {i}");
        }
        assert_eq!(d.normalized.iter().filter(|v| v.is_some()).count(), 4);
        assert_eq!(d.skip, vec![2, 4, 6]);
    }

    #[test]
    fn ebqm_matches_scipy_imagenet_defaults() {
        let d = ebqm(2.0, 5.0, 0.25, 0.5).decide(&scores()).unwrap();
        // betainc(2, 5, [0, 2/3, 1/3, 1]) = [0, 0.9821673525377229, 0.64883401920439, 1]
        assert!((d.mapped[4].unwrap() - 0.9821673525377229).abs() < 1e-12);
        assert!((d.mapped[6].unwrap() - 0.64883401920439).abs() < 1e-12);
        assert_eq!(d.skip, vec![2]);
        let d = ebqm(2.0, 5.0, 0.25, 0.8).decide(&scores()).unwrap();
        // Q = 0.286; S adds blocks 1 (0.12) and 5 (0.25): s = (D - 0.03) / 0.22
        assert!((d.quantile.unwrap() - 0.286).abs() < 1e-12);
        assert!((d.mapped[1].unwrap() - 0.7805904739520682).abs() < 1e-12);
        assert!((d.mapped[6].unwrap() - 0.09684171191395612).abs() < 1e-12);
        assert_eq!(d.skip, vec![2, 6]);
    }

    #[test]
    fn ebqm_edge_cases_skip_nothing() {
        let m = ebqm(5.0, 1.0, 0.3, 0.5);
        // no candidates at all
        let d = m.decide(&[None, None]).unwrap();
        assert!(d.skip.is_empty() && d.quantile.is_none());
        // |S| < 2: a single candidate
        let d = m.decide(&[None, Some(0.2)]).unwrap();
        assert!(d.skip.is_empty());
        assert_eq!(d.quantile, Some(0.2));
        // |S| < 2 with two candidates: the median only admits the smaller one
        let d = m.decide(&[None, Some(0.1), Some(0.3)]).unwrap();
        assert!(d.skip.is_empty(), "{d:?}");
        // no spread: identical scores
        let d = m.decide(&[None, Some(0.5), Some(0.5), Some(0.5)]).unwrap();
        assert!(d.skip.is_empty() && d.normalized.iter().all(Option::is_none));
    }

    #[test]
    fn threshold_and_fixed_ablations() {
        let d = PruneMethod::threshold(0.3)
            .unwrap()
            .decide(&scores())
            .unwrap();
        // s = (D - 0.03) / 0.37 < 0.3  <=>  D < 0.141
        assert_eq!(d.skip, vec![1, 2, 4, 6, 8]);
        assert!(d.mapped.iter().all(Option::is_none));
        let d = PruneMethod::Fixed { k: 3 }.decide(&scores()).unwrap();
        assert_eq!(d.skip, vec![2, 4, 6]);
        let d = PruneMethod::Fixed { k: 100 }.decide(&scores()).unwrap();
        assert_eq!(d.skip.len(), 8);
    }

    // Golden values (numpy 2.4.6, scipy 1.17.1), run once, continuing the snippet above:
    //
    //   from scipy import stats, special
    //   Q = np.quantile(D, 0.5); S = D <= Q
    //   s = (D[S] - D[S].min()) / (D[S].max() - D[S].min()); z = (s - s.mean()) / s.std()
    //   stats.norm.cdf(z); stats.gamma.cdf(s, a=2, scale=0.5); stats.expon.cdf(s, scale=1/3)
    //   special.softmax(s); special.expit(z)
    #[test]
    fn mapping_ablations_match_scipy() {
        // S = blocks 2, 4, 6, 8 with s = 0, 2/3, 1/3, 1; τ = 0.3, q = 0.5.
        let cases: [(Mapping, [f64; 4], &[usize]); 5] = [
            (
                Mapping::Normal,
                [
                    0.08985624743949988,
                    0.6726395769907116,
                    0.3273604230092886,
                    0.9101437525605001,
                ],
                &[2],
            ),
            (
                Mapping::Gamma {
                    shape: Mapping::DEFAULT_GAMMA_SHAPE,
                    scale: Mapping::DEFAULT_GAMMA_SCALE,
                },
                [
                    0.0,
                    0.3849400110633043,
                    0.14430480161234663,
                    0.5939941502901616,
                ],
                &[2, 6],
            ),
            (
                Mapping::Exponential {
                    rate: Mapping::DEFAULT_EXPONENTIAL_RATE,
                },
                [
                    0.0,
                    0.8646647167633874,
                    0.6321205588285579,
                    0.950212931632136,
                ],
                &[2],
            ),
            (
                Mapping::Softmax,
                [
                    0.14161039894505958,
                    0.2758193945926258,
                    0.19763323228912327,
                    0.38493697417319145,
                ],
                &[2, 4, 6],
            ),
            (
                Mapping::Sigmoid,
                [
                    0.20724036131187187,
                    0.6099765374423382,
                    0.39002346255766196,
                    0.7927596386881282,
                ],
                &[2],
            ),
        ];
        for (mapping, want, skip) in cases {
            let method = PruneMethod::quantile_map(mapping, 0.3, 0.5).unwrap();
            let d = method.decide(&scores()).unwrap();
            assert!((d.quantile.unwrap() - 0.105).abs() < 1e-12);
            for (block, m) in [2, 4, 6, 8].into_iter().zip(want) {
                let got = d.mapped[block].unwrap();
                // statrs' erfc agrees with SciPy to about 1e-11.
                assert!(
                    (got - m).abs() < 1e-9,
                    "{}: block {block}: {got} vs {m}",
                    method.name()
                );
            }
            assert_eq!(d.skip, skip, "{}", method.name());
        }
    }

    #[test]
    fn mapping_parameters_are_checked_and_edge_cases_skip_nothing() {
        for bad in [
            Mapping::Gamma {
                shape: 0.0,
                scale: 1.0,
            },
            Mapping::Gamma {
                shape: 1.0,
                scale: f64::NAN,
            },
            Mapping::Exponential { rate: -1.0 },
        ] {
            assert!(matches!(
                PruneMethod::quantile_map(bad, 0.3, 0.5),
                Err(PruneError::Parameter { .. })
            ));
        }
        assert_eq!(
            PruneMethod::quantile_map(Mapping::Softmax, 1.2, 0.5),
            Err(PruneError::Tau(1.2))
        );
        assert_eq!(
            PruneMethod::quantile_map(Mapping::Softmax, 0.3, 0.0),
            Err(PruneError::Quantile(0.0))
        );
        let m = PruneMethod::quantile_map(Mapping::Normal, 0.3, 0.5).unwrap();
        assert!(
            m.decide(&[None, Some(0.1), Some(0.3)])
                .unwrap()
                .skip
                .is_empty()
        );
        assert!(
            m.decide(&[None, Some(0.5), Some(0.5), Some(0.5)])
                .unwrap()
                .skip
                .is_empty()
        );
    }
}
