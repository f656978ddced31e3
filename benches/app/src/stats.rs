//! Order statistics of a handful of samples: the median and the nearest-rank percentile.

/// The median: the middle sample, or the mean of the two middle ones. `None` for no samples.
pub fn median(samples: &[f64]) -> Option<f64> {
    let sorted = sorted(samples);
    let count = sorted.len();
    if count == 0 {
        return None;
    }
    let upper = *sorted.get(count / 2)?;
    if count % 2 == 1 {
        Some(upper)
    } else {
        Some((sorted.get(count / 2 - 1)? + upper) / 2.0)
    }
}

/// The nearest-rank percentile: the smallest sample with at least `percent` % of the samples at
/// or below it (`percent` in 0–100). With 10 samples, p90 is the 9th smallest. `None` for no
/// samples or a percent outside 0–100.
pub fn percentile(samples: &[f64], percent: f64) -> Option<f64> {
    if !(0.0..=100.0).contains(&percent) {
        return None;
    }
    let sorted = sorted(samples);
    let count = sorted.len();
    if count == 0 {
        return None;
    }
    // rank = ceil(p/100 · n), at least 1.
    let rank = ((percent / 100.0) * count as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(count) - 1).copied()
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use test_case::test_case;

    #[test_case(&[], None ; "empty")]
    #[test_case(&[3.0], Some(3.0) ; "one")]
    #[test_case(&[5.0, 1.0], Some(3.0) ; "two")]
    #[test_case(&[9.0, 1.0, 5.0], Some(5.0) ; "three unsorted")]
    #[test_case(&[4.0, 1.0, 3.0, 2.0], Some(2.5) ; "four")]
    #[test_case(&[f64::NAN, 2.0], Some(2.0) ; "not a number is ignored")]
    fn medians(samples: &[f64], expected: Option<f64>) {
        assert_eq!(median(samples), expected);
    }

    #[test_case(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90.0, Some(9.0) ; "p90 of ten is the ninth")]
    #[test_case(&[10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0], 50.0, Some(5.0) ; "p50 of ten is the fifth")]
    #[test_case(&[1.0, 2.0, 3.0], 100.0, Some(3.0) ; "p100 is the maximum")]
    #[test_case(&[1.0, 2.0, 3.0], 0.0, Some(1.0) ; "p0 is the minimum")]
    #[test_case(&[7.0], 90.0, Some(7.0) ; "one sample")]
    #[test_case(&[], 90.0, None ; "empty")]
    #[test_case(&[1.0], 101.0, None ; "percent out of range")]
    fn percentiles(samples: &[f64], percent: f64, expected: Option<f64>) {
        assert_eq!(percentile(samples, percent), expected);
    }

    proptest! {
        #[test]
        fn statistics_stay_within_the_samples(
            samples in proptest::collection::vec(-1e9f64..1e9, 1..50),
            percent in 0.0f64..=100.0,
        ) {
            let low = samples.iter().copied().fold(f64::INFINITY, f64::min);
            let high = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let m = median(&samples).unwrap();
            let p = percentile(&samples, percent).unwrap();
            prop_assert!(low <= m && m <= high);
            prop_assert!(samples.contains(&p));
        }
    }
}
