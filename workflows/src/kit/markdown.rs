//! Text for the Web UI's markdown (current details, summaries).

/// Escapes what the Web UI's markdown renderer would interpret (a pair of `$` is math there,
/// `*` and `_` emphasis, and so on), so amounts and names show as written.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '$' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' | '|' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_names_show_as_written() {
        assert_eq!(escape_markdown("$9.19 for my_bucket"), "\\$9.19 for my\\_bucket");
        assert_eq!(escape_markdown("plain"), "plain");
    }
}
