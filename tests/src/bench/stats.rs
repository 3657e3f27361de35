//! Percentiles and spreads of measured durations (this machine is noisy: every figure the bench
//! reports is a median or a percentile of several samples, with its spread beside it).

use serde::Serialize;

/// What a set of samples says: the nearest-rank percentiles and the extremes, in the samples' unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

/// The nearest-rank percentile `p` (0..=100) of `samples` (any order); `None` when empty.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    // Nearest rank: the smallest sample with at least p % of the samples at or below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The summary of `samples`; `None` when there are none.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    Some(Summary {
        n: samples.len(),
        p50: percentile(samples, 50.0)?,
        p99: percentile(samples, 99.0)?,
        min: percentile(samples, 0.0)?,
        max: percentile(samples, 100.0)?,
    })
}

/// `value` rounded to two decimals, for the report (the measurements are not finer than that).
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_any_order() {
        let samples = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&samples, 50.0), Some(3.0));
        assert_eq!(percentile(&samples, 99.0), Some(5.0));
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        assert_eq!(percentile(&samples, 20.0), Some(1.0));
        assert_eq!(percentile(&samples, 21.0), Some(2.0));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 99.0), Some(99.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn a_summary_has_the_extremes_and_ignores_nothing_finite() {
        let s = summarize(&[10.0, 30.0, 20.0]).expect("samples");
        assert_eq!((s.n, s.p50, s.min, s.max), (3, 20.0, 10.0, 30.0));
        assert!(summarize(&[]).is_none());
        assert_eq!(round2(1.23456), 1.23);
    }
}
