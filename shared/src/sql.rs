//! SQL text helpers. Every identifier that reaches SQL text goes through [`quote_ident`];
//! data values never do (they travel in Parquet files or as named statement parameters).

/// Quotes one identifier part with backticks, doubling any backtick inside it, so that any
/// column or table name (spaces, dots, backticks, keywords) is taken literally.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes_backticks() {
        assert_eq!(quote_ident("plain"), "`plain`");
        assert_eq!(quote_ident("a.b c"), "`a.b c`");
        assert_eq!(quote_ident("we`ird"), "`we``ird`");
    }
}
