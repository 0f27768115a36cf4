//! The Kubernetes VPA recommender's estimate: a decaying weighted quantile plus a margin.

use super::{Candidate, Method, Path};

/// VPA recommender style: samples weighted by `2^(-age / half_life)`; the point is
/// the weighted median and the base the weighted q-quantile plus 15%.
pub struct Vpa {
    /// Age, in samples, at which a sample's weight halves (24 h).
    pub half_life: usize,
}

impl Candidate for Vpa {
    fn method(&self) -> Method {
        Method::Vpa
    }

    fn forecast(&self, y: &[f64], horizon: usize, q: f64) -> Result<Path, String> {
        let decay = 0.5f64.powf(1.0 / self.half_life.max(1) as f64);
        let mut weight = 1.0 / decay;
        let mut weighted: Vec<(f64, f64)> = y
            .iter()
            .rev()
            .map(|&v| {
                weight *= decay;
                (v, weight)
            })
            .collect();
        let median = weighted_quantile(&mut weighted, 0.5);
        let upper = weighted_quantile(&mut weighted, q) * 1.15;
        Ok(Path {
            point: vec![median; horizon],
            base: vec![upper; horizon],
            spec: None,
        })
    }
}

/// The smallest value whose cumulative weight, in value order, reaches `q` of the total.
///
/// Quickselect on weights rather than a sort (VPA runs at every backtest origin);
/// `pairs` is reordered.
pub(super) fn weighted_quantile(pairs: &mut [(f64, f64)], q: f64) -> f64 {
    let mut target = q * pairs.iter().map(|p| p.1).sum::<f64>();
    let mut rest = pairs;
    while rest.len() > 16 {
        let mid = rest.len() / 2;
        let (below, pivot, above) = rest.select_nth_unstable_by(mid, |a, b| a.0.total_cmp(&b.0));
        let weight: f64 = below.iter().map(|p| p.1).sum();
        if weight >= target && !below.is_empty() {
            rest = below;
        } else if weight + pivot.1 >= target || above.is_empty() {
            return pivot.0;
        } else {
            target -= weight + pivot.1;
            rest = above;
        }
    }
    rest.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut acc = 0.0;
    for &(v, w) in rest.iter() {
        acc += w;
        if acc >= target {
            return v;
        }
    }
    rest.last().map_or(0.0, |p| p.0)
}
