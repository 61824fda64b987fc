//! The README's configuration reference and the code must agree: every variable the code
//! reads is documented with its default, and the README documents no variable the code lacks.

use anyhow::{Context, Result};
use deltasink_tests::repo_root;

fn section(readme: &str, name: &str) -> Result<Vec<(String, String)>> {
    let start = format!("<!-- config-reference:{name}");
    let end = format!("<!-- /config-reference:{name} -->");
    let from = readme
        .find(&start)
        .context("README lacks the section start")?;
    let to = readme[from..]
        .find(&end)
        .context("README lacks the section end")?
        + from;
    Ok(readme[from..to]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].trim_matches('`').to_string(), cells[2].to_string())
        })
        .collect())
}

#[test]
fn stage_reference_matches_the_code() -> Result<()> {
    check("stage", deltasink::config::vars::STAGE)
}

#[test]
fn load_reference_matches_the_code() -> Result<()> {
    check("load", deltasink::config::vars::LOAD)
}

#[test]
fn maintain_reference_matches_the_code() -> Result<()> {
    check("maintain", deltasink::config::vars::MAINTAIN)
}

fn check(name: &str, code: &[(&str, &str, &str)]) -> Result<()> {
    let readme = std::fs::read_to_string(repo_root().join("README.md"))?;
    let documented = section(&readme, name)?;
    for (name, default, _) in code {
        let (_, doc_default) = documented
            .iter()
            .find(|(n, _)| n == name)
            .with_context(|| format!("README does not document {name}"))?;
        if default.is_empty() {
            assert!(
                doc_default.starts_with('('),
                "{name}: README says default {doc_default}, code has none"
            );
        } else {
            assert_eq!(
                doc_default.trim_matches('`'),
                *default,
                "{name}: default differs"
            );
        }
    }
    for (name, _) in &documented {
        assert!(
            code.iter().any(|(n, _, _)| n == name),
            "README documents {name}, which the code does not read"
        );
    }
    Ok(())
}
