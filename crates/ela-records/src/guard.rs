//! No command writes over what it reads: an output that is one of the command's inputs (the
//! same path, or another name of the same file: a hard or symbolic link) is refused before
//! anything is read or written, naming both flags.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// Whether `a` and `b` name one existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    matches!(
        (a.canonicalize(), b.canonicalize()),
        (Ok(x), Ok(y)) if x == y
    )
}

/// Refuses `output` (a flag and the file it writes) when it is one of `inputs` (flags and the
/// files they read). An output that does not exist yet is no input.
pub fn refuse_overwriting_inputs(output: (&str, &Path), inputs: &[(&str, &Path)]) -> Result<()> {
    let (flag, path) = output;
    for (input_flag, input) in inputs {
        if same_file(path, input) {
            bail!(
                "{flag} {} is the file given as {input_flag}: writing it would destroy that \
                 input; choose another {flag}",
                path.display()
            );
        }
    }
    Ok(())
}

/// The absolute, symlink-resolved form of `path`, or of its nearest existing ancestor with the
/// rest appended (for a folder that does not exist yet).
fn resolved(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut at = path.to_path_buf();
    loop {
        if let Ok(real) = at.canonicalize() {
            return missing.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (at.file_name(), at.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name.to_os_string());
                at = if parent.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    parent.to_path_buf()
                };
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Refuses a folder `output` that a command fills (or replaces) when the `input` folder lies in
/// it: the input would be overwritten or removed with it.
pub fn refuse_input_inside_output(output: (&str, &Path), input: (&str, &Path)) -> Result<()> {
    let (out_flag, out) = output;
    let (in_flag, input) = input;
    if resolved(input).starts_with(resolved(out)) {
        bail!(
            "{in_flag} {} lies inside {}, which {out_flag} fills: the input would be \
             overwritten; move it elsewhere or choose another {out_flag}",
            input.display(),
            out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_is_an_input_is_refused_under_any_of_its_names() {
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("w.safetensors");
        std::fs::write(&weights, b"weights").unwrap();
        let input = dir.path().join("x.safetensors");
        std::fs::write(&input, b"x").unwrap();
        let inputs = [
            ("--weights", weights.as_path()),
            ("--input", input.as_path()),
        ];
        let err = refuse_overwriting_inputs(("--output", &weights), &inputs)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--output") && err.contains("given as --weights"),
            "{err}"
        );
        // Another spelling, a hard link and a symbolic link of the same file.
        let dotted = dir.path().join(".").join("x.safetensors");
        assert!(refuse_overwriting_inputs(("--output", &dotted), &inputs).is_err());
        let hard = dir.path().join("hard");
        std::fs::hard_link(&weights, &hard).unwrap();
        assert!(refuse_overwriting_inputs(("--output", &hard), &inputs).is_err());
        #[cfg(unix)]
        {
            let soft = dir.path().join("soft");
            std::os::unix::fs::symlink(&input, &soft).unwrap();
            assert!(refuse_overwriting_inputs(("--output", &soft), &inputs).is_err());
        }
        refuse_overwriting_inputs(("--output", &dir.path().join("y")), &inputs).unwrap();
        // Folders.
        let data = dir.path().join("data");
        let err = refuse_input_inside_output(
            ("--dir", &data.join("imagenet")),
            ("--from", &data.join("imagenet").join("archives")),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--from") && err.contains("inside"), "{err}");
        refuse_input_inside_output(("--dir", &data.join("imagenet")), ("--from", &data)).unwrap();
    }
}
