//! Reading string columns of query results row by row, decoding each distinct value once.
//!
//! The store keeps low-cardinality strings (ids, kinds, states) dictionary-encoded, and a query
//! that does not cast them hands the dictionaries on: [`map_strings`] then runs its function
//! once per dictionary value and gives every row the result by its key, instead of once per row
//! (the per-row string matching and copying was most of `diagnose`'s time). A plain string
//! column is mapped once per distinct value of the batch too, through a hash map of its values.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::error::ArrowError;

/// `f` of each row's value (`None` for a null), `f` running once per distinct dictionary value
/// of a dictionary column.
pub fn map_strings<T: Clone>(
    a: &ArrayRef,
    mut f: impl FnMut(&str) -> T,
) -> Result<Vec<Option<T>>, ArrowError> {
    if let Some(d) = a.as_any_dictionary_opt() {
        let values = cast(d.values(), &DataType::Utf8)?;
        let values = values.as_string::<i32>();
        let mapped: Vec<Option<T>> = (0..values.len())
            .map(|i| values.is_valid(i).then(|| f(values.value(i))))
            .collect();
        let keys = d.normalized_keys();
        return Ok((0..a.len())
            .map(|row| {
                if a.is_valid(row) {
                    mapped[keys[row]].clone()
                } else {
                    None
                }
            })
            .collect());
    }
    let strings = cast(a, &DataType::Utf8)?;
    let strings = strings.as_string::<i32>();
    // A plain column: remember each distinct value's result for the rest of the batch.
    let mut seen: HashMap<&str, T, foldhash::fast::RandomState> = HashMap::default();
    Ok((0..strings.len())
        .map(|row| {
            strings.is_valid(row).then(|| {
                let v = strings.value(row);
                match seen.get(v) {
                    Some(t) => t.clone(),
                    None => {
                        let t = f(v);
                        seen.insert(v, t.clone());
                        t
                    }
                }
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, StringArray};
    use arrow::datatypes::Int32Type;
    use std::sync::Arc;

    #[test]
    fn dictionary_values_are_mapped_once() {
        let dict: DictionaryArray<Int32Type> =
            vec![Some("b"), Some("a"), None, Some("b"), Some("b")]
                .into_iter()
                .collect();
        let a: ArrayRef = Arc::new(dict);
        let mut calls = 0;
        let got = map_strings(&a, |s| {
            calls += 1;
            s.to_uppercase()
        })
        .unwrap();
        assert_eq!(
            got,
            [
                Some("B".into()),
                Some("A".into()),
                None,
                Some("B".into()),
                Some("B".into())
            ]
        );
        assert_eq!(calls, 2);
        let plain: ArrayRef = Arc::new(StringArray::from(vec![
            Some("x"),
            None,
            Some("yy"),
            Some("x"),
        ]));
        let mut calls = 0;
        let got = map_strings(&plain, |s| {
            calls += 1;
            s.len()
        })
        .unwrap();
        assert_eq!(got, [Some(1), None, Some(2), Some(1)]);
        assert_eq!(calls, 2);
    }
}
