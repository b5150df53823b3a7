//! Statistics over samples in milliseconds: medians, tenths of a series, ratios. Pure.

/// Median of `samples` (mean of the two middle values for an even count); None when empty.
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// The first tenth of a series (at least one sample when the series is not empty).
pub fn first_tenth(series: &[f64]) -> &[f64] {
    &series[..tenth_len(series.len())]
}

/// The last tenth of a series (at least one sample when the series is not empty).
pub fn last_tenth(series: &[f64]) -> &[f64] {
    &series[series.len() - tenth_len(series.len())..]
}

fn tenth_len(n: usize) -> usize {
    if n == 0 { 0 } else { (n / 10).max(1) }
}

/// `a / b` when both are known and `b` is positive.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Sum of a series, in seconds (samples are milliseconds).
pub fn total_seconds(series: &[f64]) -> f64 {
    series.iter().sum::<f64>() / 1000.0
}

/// A duration in milliseconds for a table cell: 3 significant digits, "-" when unknown.
pub fn fmt_ms(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// A ratio for a table cell, e.g. "0.12x"; "-" when unknown.
pub fn fmt_ratio(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(v) if v >= 10.0 => format!("{v:.0}x"),
        Some(v) => format!("{v:.2}x"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.5]), Some(7.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn median_ignores_order_and_outliers() {
        let v = [5.0, 5.1, 4.9, 500.0, 5.0];
        assert_eq!(median(&v), Some(5.0));
    }

    #[test]
    fn tenths() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert_eq!(first_tenth(&v).len(), 100);
        assert_eq!(first_tenth(&v)[0], 1.0);
        assert_eq!(last_tenth(&v).len(), 100);
        assert_eq!(last_tenth(&v)[0], 901.0);
        // Short series still give one sample each.
        assert_eq!(first_tenth(&[1.0, 2.0, 3.0]), &[1.0]);
        assert_eq!(last_tenth(&[1.0, 2.0, 3.0]), &[3.0]);
        assert!(first_tenth(&[]).is_empty());
        assert!(last_tenth(&[]).is_empty());
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(Some(1.0), Some(4.0)), Some(0.25));
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
        assert_eq!(ratio(Some(1.0), None), None);
    }

    #[test]
    fn totals_and_formatting() {
        assert_eq!(total_seconds(&[500.0, 1500.0]), 2.0);
        assert_eq!(fmt_ms(Some(1234.4)), "1234");
        assert_eq!(fmt_ms(Some(12.345)), "12.3");
        assert_eq!(fmt_ms(Some(1.2345)), "1.23");
        assert_eq!(fmt_ms(None), "-");
        assert_eq!(fmt_ratio(Some(0.0834)), "0.08x");
        assert_eq!(fmt_ratio(Some(23.4)), "23x");
        assert_eq!(fmt_ratio(None), "-");
    }
}
