//! "Did you mean …?": the nearest known name by edit distance.
//!
//! Distance is the optimal-string-alignment variant of Damerau–Levenshtein, so a swapped pair of
//! letters (`nmae`) costs one edit, like the typo it usually is.

/// Edit distance between `a` and `b` (insert, delete, substitute, swap adjacent: one each).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[n][m]
}

/// The candidate nearest to `word`, if any is near enough to be a plausible typo (at most half
/// of the longer name's length away). Ties go to the earlier candidate.
pub fn nearest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = distance(word, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let limit = word.chars().count().max(c.chars().count()) / 2;
    (d <= limit.max(1)).then_some(c)
}

/// `did you mean 'x'?` for the nearest candidate.
pub fn hint<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    nearest(word, candidates).map(|c| format!("did you mean '{c}'?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_cost_one() {
        assert_eq!(distance("nmae", "name"), 1);
        assert_eq!(distance("proc.nmae", "process.name"), 4);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn nearest_prefers_closest_and_refuses_far_ones() {
        let names = ["process.name", "process.pid", "parent.name"];
        assert_eq!(nearest("proc.nmae", names), Some("process.name"));
        assert_eq!(nearest("zzzzzzzzzzzz", names), None);
    }
}
