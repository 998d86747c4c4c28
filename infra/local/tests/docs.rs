//! The README and docs/ say what template.yaml and the code do: the counts they state (functions,
//! alarms, secrets), every parameter with the default the template sets, the architecture
//! picture's functions, and links that lead somewhere. The custom-metric count is `metrics.rs`.

use std::path::{Path, PathBuf};

use serde_yaml::Value;

use sandman_local::table::TEMPLATE;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// README.md, every docs/*.md and the Makefile, by name.
fn documents() -> Vec<(String, String)> {
    let mut paths = vec![root().join("README.md"), root().join("Makefile")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    paths.extend(docs);
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.strip_prefix(root()).unwrap_or(&path).display().to_string();
            (name, text)
        })
        .collect()
}

fn resources_of(kind: &str) -> Vec<String> {
    let doc: Value = serde_yaml::from_str(TEMPLATE).unwrap();
    doc["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, _)| id.as_str().unwrap().to_owned())
        .collect()
}

fn number(word: &str) -> Option<usize> {
    let words = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    words
        .iter()
        .position(|w| w.eq_ignore_ascii_case(word))
        .or_else(|| word.replace(',', "").parse().ok())
}

/// Every "N <noun>" the documents state, with up to two words between (`five small Rust
/// functions`, `21 CloudWatch alarms`): (document, N, the phrase).
fn stated(noun: &str) -> Vec<(String, usize, String)> {
    let mut found = Vec::new();
    for (name, text) in documents() {
        for line in text.lines() {
            let words: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || "()[],;:`*".contains(c))
                .filter(|w| !w.is_empty())
                .collect();
            for (i, word) in words.iter().enumerate() {
                if *word != noun {
                    continue;
                }
                // "N noun", or N and up to two plain words before the noun.
                for back in 1..=3 {
                    let Some(j) = i.checked_sub(back) else { break };
                    if let Some(n) = number(words[j]) {
                        found.push((name.clone(), n, words[j..=i].join(" ")));
                        break;
                    }
                    if !words[j].chars().all(|c| c.is_ascii_alphabetic() || c == '-') {
                        break;
                    }
                }
            }
        }
    }
    found
}

fn assert_counts(noun: &str, actual: usize, minimum_statements: usize) {
    let stated = stated(noun);
    assert!(
        stated.len() >= minimum_statements,
        "the docs should state how many {noun} there are: {stated:?}"
    );
    for (document, n, phrase) in &stated {
        assert_eq!(*n, actual, "{document} says \"{phrase}\"; template.yaml has {actual}");
    }
}

#[test]
fn the_docs_count_the_functions_alarms_and_secrets_the_template_has() {
    assert_counts("functions", resources_of("AWS::Serverless::Function").len(), 4);
    assert_counts("alarms", resources_of("AWS::CloudWatch::Alarm").len(), 2);
    assert_counts("secrets", resources_of("AWS::SecretsManager::Secret").len(), 1);
}

#[test]
fn every_parameter_is_in_the_deploy_guide_with_the_default_the_template_sets() {
    let guide = std::fs::read_to_string(root().join("docs/deploy.md")).unwrap();
    let section = guide
        .split("## Parameters")
        .nth(1)
        .expect("docs/deploy.md has a Parameters section");
    let rows: Vec<(String, String)> = section
        .lines()
        .take_while(|line| !line.starts_with("## "))
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), cells.get(2)?.to_string()))
        })
        .collect();
    let doc: Value = serde_yaml::from_str(TEMPLATE).unwrap();
    let parameters = doc["Parameters"].as_mapping().unwrap();
    for (name, parameter) in parameters {
        let name = name.as_str().unwrap();
        let default = match &parameter["Default"] {
            Value::String(s) if s.is_empty() => "empty".to_owned(),
            Value::String(s) => format!("`{s}`"),
            Value::Number(n) => format!("`{n}`"),
            other => panic!("{name}: a parameter without a default ({other:?}) stops a newcomer's deploy"),
        };
        let row = rows.iter().find(|(row, _)| row == name);
        assert_eq!(
            row.map(|(_, stated)| stated.as_str()),
            Some(default.as_str()),
            "docs/deploy.md, Parameters: {name} should say its default {default}"
        );
    }
    for (row, _) in &rows {
        assert!(
            parameters.contains_key(row.as_str()),
            "docs/deploy.md lists {row}, which the template lacks"
        );
    }
}

#[test]
fn the_readme_is_short_and_its_picture_shows_every_function() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines < 300, "README.md has {lines} lines: move detail to docs/");
    assert!(readme.contains("(docs/architecture.png)"));
    let picture = std::fs::read_to_string(root().join("docs/architecture.dot")).unwrap();
    let doc: Value = serde_yaml::from_str(TEMPLATE).unwrap();
    for (id, resource) in doc["Resources"].as_mapping().unwrap() {
        if let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() {
            assert!(
                picture.contains(&format!("label=\"{binary}")),
                "docs/architecture.dot has no node for {} ({binary})",
                id.as_str().unwrap()
            );
        }
    }
    assert!(
        root().join("docs/architecture.png").is_file(),
        "render it: make docs-picture"
    );
}

#[test]
fn every_relative_link_of_the_docs_leads_to_a_file() {
    for (name, text) in documents() {
        let base = root().join(&name).parent().unwrap().to_path_buf();
        for target in text.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            let path = target.split('#').next().unwrap_or_default();
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            assert!(
                base.join(path).exists(),
                "{name} links to {target}, which does not exist"
            );
        }
    }
}
