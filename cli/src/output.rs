//! Printing: aligned tables for people, one JSON document for scripts.

use std::io::Write;

use serde::Serialize;

/// Rows as columns padded to their widest cell, three spaces apart, as kubectl prints them.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter().filter_map(|r| r.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `value` as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) {
    // Plain data (string keys, no NaN) always serializes.
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    print_text(&format!("{text}\n"));
}

/// `text` on stdout; unlike `print!`, a closed pipe (`raydar ls | head -1`) is not a panic.
pub fn print_text(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// `text` on stderr, beside what stdout carries (a log while stdout is a JSON report); a closed
/// stderr is not a panic either.
pub fn print_aside(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes()).and_then(|()| stderr.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let rows = vec![
            vec!["NAME".to_owned(), "PHASE".to_owned(), "AGE".to_owned()],
            vec!["a-long-name".to_owned(), "Ready".to_owned(), "5s".to_owned()],
            vec!["b".to_owned(), "Provisioning".to_owned(), "".to_owned()],
        ];
        assert_eq!(
            table(&rows),
            "NAME          PHASE          AGE\n\
             a-long-name   Ready          5s\n\
             b             Provisioning\n"
        );
    }
}
