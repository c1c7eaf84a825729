//! Configuration files: `ela train --config FILE.toml [flags]`.
//!
//! A config file holds the same settings as the command line, one key per flag
//! (`depth = 56` is `--depth 56`, `prune-method = "gqm"` or `prune_method = "gqm"` is
//! `--prune-method gqm`). Tables other than `[paper]` are flattened (`[prune]` `alpha = 2` is
//! `--alpha 2`); `[paper]` holds what the paper reports for the configured run and is read by
//! reports, not by training. Flags given on the command line after or before `--config` win
//! over the file.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Tables that carry information about a run rather than settings.
pub const METADATA_TABLES: [&str; 1] = ["paper"];

/// The flags a config file stands for (keys in sorted order; a flag appears once per key).
pub fn flags_of(path: &Path, text: &str) -> Result<Vec<String>> {
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut flags = Vec::new();
    push_table(path, &table, &mut flags)?;
    Ok(flags)
}

fn push_table(path: &Path, table: &toml::Table, flags: &mut Vec<String>) -> Result<()> {
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    toml::Value::Integer(i) => Ok(i.to_string()),
                    toml::Value::Float(f) => Ok(f.to_string()),
                    other => bail!(
                        "{}: `{key}` holds a {}; arrays may hold only strings and numbers",
                        path.display(),
                        other.type_str()
                    ),
                })
                .collect::<Result<Vec<_>>>()?
                .join(","),
            toml::Value::Table(inner) => {
                if !METADATA_TABLES.contains(&key.as_str()) {
                    push_table(path, inner, flags)?;
                }
                continue;
            }
            toml::Value::Datetime(_) => {
                bail!("{}: `{key}` is a date, not a setting", path.display())
            }
        };
        flags.push(flag);
        flags.push(text);
    }
    Ok(())
}

/// Replaces `--config FILE` (or `--config=FILE`) in `args` by the file's flags, placed right
/// after the subcommand so that flags on the command line override them.
pub fn expand(args: Vec<String>) -> Result<Vec<String>> {
    let Some(at) = args
        .iter()
        .position(|a| a == "--config" || a.starts_with("--config="))
    else {
        return Ok(args);
    };
    let (file, width) = match args[at].strip_prefix("--config=") {
        Some(f) => (f.to_string(), 1),
        None => match args.get(at + 1) {
            Some(f) => (f.clone(), 2),
            None => bail!("--config needs a file"),
        },
    };
    let path = Path::new(&file);
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--config: cannot read {file}"))?;
    let flags = flags_of(path, &text)?;
    let mut out: Vec<String> = args[..at].to_vec();
    out.extend(args[at + width..].iter().cloned());
    // After the program name and the subcommand.
    let insert = 2.min(out.len());
    out.splice(insert..insert, flags);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_become_flags_and_the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.toml");
        std::fs::write(
            &file,
            "dataset = \"cifar100\"\ndepth = 56\nlr = 0.05\nzero_init_last_bn = true\n\
             [prune]\nalpha = 2\nwindows = [\"1-3\", \"45-48\"]\n\
             [paper]\ntop1 = 74.31\n",
        )
        .unwrap();
        let args: Vec<String> = [
            "ela",
            "train",
            "--config",
            file.to_str().unwrap(),
            "--depth",
            "20",
        ]
        .map(String::from)
        .to_vec();
        let out = expand(args).unwrap();
        assert_eq!(
            out[2..],
            [
                "--dataset",
                "cifar100",
                "--depth",
                "56",
                "--lr",
                "0.05",
                "--alpha",
                "2",
                "--windows",
                "1-3,45-48",
                "--zero-init-last-bn",
                "true",
                "--depth",
                "20"
            ]
        );
        assert_eq!(&out[..2], ["ela", "train"]);
        // Without --config nothing changes.
        let plain: Vec<String> = ["ela", "train", "--depth", "20"].map(String::from).to_vec();
        assert_eq!(expand(plain.clone()).unwrap(), plain);
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "depth = [").unwrap();
        let args = |f: &str| -> Vec<String> {
            ["ela", "train", &format!("--config={f}")]
                .map(String::from)
                .to_vec()
        };
        let err = format!("{:#}", expand(args(file.to_str().unwrap())).unwrap_err());
        assert!(
            err.contains("bad.toml") && err.contains("not valid TOML"),
            "{err}"
        );
        let err = format!("{:#}", expand(args("/no/such.toml")).unwrap_err());
        assert!(err.contains("cannot read /no/such.toml"), "{err}");
        std::fs::write(&file, "windows = [[1]]").unwrap();
        let err = format!("{:#}", expand(args(file.to_str().unwrap())).unwrap_err());
        assert!(err.contains("arrays may hold only"), "{err}");
    }
}
