//! Configuration files: `ela train --config FILE.toml [--config MORE.toml] [flags]`.
//!
//! A config file holds the same settings as the command line, one key per flag
//! (`depth = 56` is `--depth 56`, `prune-method = "gqm"` or `prune_method = "gqm"` is
//! `--prune-method gqm`). Tables other than `[paper]` are flattened (`[prune]` `alpha = 2` is
//! `--alpha 2`); `[paper]` holds what the paper reports for the configured run and is read by
//! reports, not by training.
//!
//! Each file is read as a file first: a key the command has no flag for, or a value its flag
//! rejects, is an error naming the file and the key. Then the files are merged with the command
//! line: several files apply in the order given (a later file wins), and flags on the command
//! line, before or after `--config`, win over every file. Values travel as `--key=value`, so
//! negative numbers are values, never flags.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Tables that carry information about a run rather than settings.
pub const METADATA_TABLES: [&str; 1] = ["paper"];

/// One setting of a config file: its key as written and the flag it stands for
/// (`--key=value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key as written in the file (`prune_method`, `alpha` inside `[prune]`, …).
    pub key: String,
    /// The flag, `--name=value`.
    pub flag: String,
}

/// The settings a config file stands for (keys in sorted order, tables flattened).
pub fn settings_of(path: &Path, text: &str) -> Result<Vec<Setting>> {
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut settings = Vec::new();
    push_table(path, &table, &mut settings)?;
    Ok(settings)
}

/// The flags a config file stands for, one `--key=value` token per key.
pub fn flags_of(path: &Path, text: &str) -> Result<Vec<String>> {
    Ok(settings_of(path, text)?
        .into_iter()
        .map(|s| s.flag)
        .collect())
}

fn scalar(path: &Path, key: &str, value: &toml::Value) -> Result<String> {
    Ok(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(_) => bail!("{}: `{key}` is a date, not a setting", path.display()),
        other => bail!(
            "{}: `{key}` holds a {}; arrays may hold only strings and numbers",
            path.display(),
            other.type_str()
        ),
    })
}

fn push_table(path: &Path, table: &toml::Table, settings: &mut Vec<Setting>) -> Result<()> {
    for (key, value) in table {
        let text = match value {
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::Array(_) | toml::Value::Table(_) | toml::Value::Boolean(_) => {
                        bail!(
                            "{}: `{key}` holds a {}; arrays may hold only strings and numbers",
                            path.display(),
                            v.type_str()
                        )
                    }
                    v => scalar(path, key, v),
                })
                .collect::<Result<Vec<_>>>()?
                .join(","),
            toml::Value::Table(inner) => {
                if !METADATA_TABLES.contains(&key.as_str()) {
                    push_table(path, inner, settings)?;
                }
                continue;
            }
            v => scalar(path, key, v)?,
        };
        settings.push(Setting {
            key: key.clone(),
            flag: format!("--{}={text}", key.replace('_', "-")),
        });
    }
    Ok(())
}

/// Long flag names (and their aliases) of `command`, without the dashes.
fn long_flags(command: &clap::Command) -> Vec<String> {
    command
        .get_arguments()
        .flat_map(|a| {
            a.get_long()
                .into_iter()
                .chain(a.get_all_aliases().unwrap_or_default())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Reads a config file for `command` (the subcommand it configures, or a command whose flags
/// are the training flags): its flags, checked alone against the command. A key without a flag,
/// or a value the flag rejects, is an error naming the file and the key.
pub fn read(path: &Path, command: &clap::Command) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--config: cannot read {}", path.display()))?;
    let settings = settings_of(path, &text)?;
    let known = long_flags(command);
    for s in &settings {
        let name = s.key.replace('_', "-");
        if name == "config" {
            bail!(
                "{}: `config` cannot be set in a config file; give several files as `--config A \
                 --config B` instead",
                path.display()
            );
        }
        if !known.contains(&name) {
            bail!(
                "{}: unknown key `{}`: `{}` has no flag --{name} (see `ela {} --help`)",
                path.display(),
                s.key,
                command.get_name(),
                command.get_display_name().unwrap_or(command.get_name())
            );
        }
    }
    // Each value alone through the command's parser: the file and the key are named.
    for s in &settings {
        let argv = [command.get_name().to_string(), s.flag.clone()];
        if let Err(e) = command.clone().try_get_matches_from(argv) {
            let why = e.to_string();
            let why = why
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            bail!("{}: key `{}`: {why}", path.display(), s.key);
        }
    }
    Ok(settings.into_iter().map(|s| s.flag).collect())
}

/// Replaces every `--config FILE` (or `--config=FILE`) after the subcommand in `args` by the
/// file's flags, read for that subcommand of `cli` (see [`read`]): the files' flags, in the
/// order the files were given, are placed right after the subcommand, so that later files and
/// every flag on the command line override them.
pub fn expand(args: Vec<String>, cli: &clap::Command) -> Result<Vec<String>> {
    if !args
        .iter()
        .any(|a| a == "--config" || a.starts_with("--config="))
    {
        return Ok(args);
    }
    let Some(name) = args.get(1) else {
        return Ok(args);
    };
    let Some(command) = cli.find_subcommand(name) else {
        bail!("--config belongs after a command, e.g. `ela train --config FILE.toml`");
    };
    let mut files = Vec::new();
    let mut rest = args[..2].to_vec();
    let mut i = 2;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            rest.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(file) = arg.strip_prefix("--config=") {
            files.push(file.to_string());
        } else if arg == "--config" {
            let file = args.get(i + 1).context("--config needs a file")?;
            files.push(file.clone());
            i += 1;
        } else {
            rest.push(arg.clone());
        }
        i += 1;
    }
    let mut flags = Vec::new();
    for file in &files {
        flags.extend(read(Path::new(file), command)?);
    }
    rest.splice(2..2, flags);
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command with a few of the training flags' kinds.
    fn command() -> clap::Command {
        clap::Command::new("ela").subcommand(
            clap::Command::new("train")
                .allow_negative_numbers(true)
                .args_override_self(true)
                .arg(clap::arg!(--dataset <NAME>).value_parser(["mnist", "cifar100"]))
                .arg(clap::arg!(--depth <D>).value_parser(clap::value_parser!(usize)))
                .arg(clap::arg!(--lr <LR>).value_parser(clap::value_parser!(f64)))
                .arg(clap::arg!(--alpha <A>).value_parser(clap::value_parser!(f64)))
                .arg(clap::arg!(--windows <W>))
                .arg(clap::arg!(--"zero-init-last-bn" <B>).value_parser(clap::value_parser!(bool)))
                .arg(clap::arg!(--config <FILE>).action(clap::ArgAction::Append)),
        )
    }

    fn args(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn files_become_flags_and_the_command_line_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.toml");
        std::fs::write(
            &file,
            "dataset = \"cifar100\"\ndepth = 56\nlr = -0.05\nzero_init_last_bn = true\n\
             [prune]\nalpha = 2\nwindows = [\"1-3\", \"45-48\"]\n\
             [paper]\ntop1 = 74.31\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let out = expand(
            args(&["ela", "train", "--config", f, "--depth", "20"]),
            &command(),
        )
        .unwrap();
        assert_eq!(
            out[2..],
            [
                "--dataset=cifar100",
                "--depth=56",
                "--lr=-0.05",
                "--alpha=2",
                "--windows=1-3,45-48",
                "--zero-init-last-bn=true",
                "--depth",
                "20"
            ]
        );
        assert_eq!(&out[..2], ["ela", "train"]);
        // The expanded line parses, negative value included, and the command line wins.
        let m = command().try_get_matches_from(&out).unwrap();
        let train = m.subcommand_matches("train").unwrap();
        assert_eq!(train.get_one::<f64>("lr"), Some(&-0.05));
        // Without --config nothing changes.
        let plain = args(&["ela", "train", "--depth", "20"]);
        assert_eq!(expand(plain.clone(), &command()).unwrap(), plain);
    }

    #[test]
    fn several_files_apply_in_order_and_later_ones_win() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
        std::fs::write(&a, "depth = 56\nlr = 0.1\n").unwrap();
        std::fs::write(&b, "depth = 110\n").unwrap();
        let out = expand(
            args(&[
                "ela",
                "train",
                "--config",
                a.to_str().unwrap(),
                &format!("--config={}", b.display()),
            ]),
            &command(),
        )
        .unwrap();
        assert_eq!(out[2..], ["--depth=56", "--lr=0.1", "--depth=110"]);
    }

    #[test]
    fn bad_files_are_named_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        let f = file.to_str().unwrap().to_string();
        let err = |text: &str| {
            std::fs::write(&file, text).unwrap();
            format!(
                "{:#}",
                expand(args(&["ela", "train", "--config", &f]), &command()).unwrap_err()
            )
        };
        let e = err("depth = [");
        assert!(
            e.contains("bad.toml") && e.contains("not valid TOML"),
            "{e}"
        );
        let e = err("windows = [[1]]");
        assert!(e.contains("arrays may hold only"), "{e}");
        let e = err("foo = 3\n");
        assert!(
            e.contains("bad.toml") && e.contains("unknown key `foo`") && !e.contains("unexpected"),
            "{e}"
        );
        let e = err("[prune]\nalphaa = 2\n");
        assert!(e.contains("bad.toml: unknown key `alphaa`"), "{e}");
        let e = err("depth = -3\n");
        assert!(
            e.contains("bad.toml: key `depth`") && e.contains("-3"),
            "{e}"
        );
        let e = err("dataset = \"imagenet2\"\n");
        assert!(e.contains("bad.toml: key `dataset`"), "{e}");
        let e = err("config = \"other.toml\"\n");
        assert!(e.contains("cannot be set in a config file"), "{e}");
        let e = format!(
            "{:#}",
            expand(
                args(&["ela", "train", "--config=/no/such.toml"]),
                &command()
            )
            .unwrap_err()
        );
        assert!(e.contains("cannot read /no/such.toml"), "{e}");
        let e = format!(
            "{:#}",
            expand(args(&["ela", "train", "--config"]), &command()).unwrap_err()
        );
        assert!(e.contains("--config needs a file"), "{e}");
    }
}
