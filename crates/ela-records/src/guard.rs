//! No command writes over what it reads: an output that is one of the command's inputs (the
//! same path, or another name of the same file: a hard or symbolic link), or a folder a command
//! fills that holds one of its inputs, is refused before anything is read or written, naming
//! both flags.
//!
//! Every command that writes states what it reads and writes as an [`Io`] and checks it first:
//!
//! ```
//! # use std::path::Path;
//! ela_records::guard::Io::new()
//!     .reads("--weights", Path::new("run/model.bpk"))
//!     .writes("--out", Path::new("picture.png"))
//!     .check()
//!     .unwrap();
//! ```

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

/// What a command reads and writes, by flag: the one check every command that writes a file
/// makes before it reads or writes anything.
#[derive(Debug, Default, Clone)]
pub struct Io {
    reads: Vec<(String, PathBuf)>,
    writes: Vec<(String, PathBuf)>,
    fills: Vec<(String, PathBuf)>,
}

impl Io {
    /// Nothing read or written yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The command reads `path` (a file, or a folder and everything in it) given by `flag`.
    pub fn reads(mut self, flag: &str, path: &Path) -> Self {
        self.reads.push((flag.to_string(), path.to_path_buf()));
        self
    }

    /// The command reads every path of `paths`, given by `flag`.
    pub fn reads_all<'a>(mut self, flag: &str, paths: impl IntoIterator<Item = &'a Path>) -> Self {
        for p in paths {
            self = self.reads(flag, p);
        }
        self
    }

    /// The command writes (or replaces) the file `path` given by `flag`.
    pub fn writes(mut self, flag: &str, path: &Path) -> Self {
        self.writes.push((flag.to_string(), path.to_path_buf()));
        self
    }

    /// The command writes files into (or replaces) the folder `path` given by `flag`.
    pub fn fills(mut self, flag: &str, path: &Path) -> Self {
        self.fills.push((flag.to_string(), path.to_path_buf()));
        self
    }

    /// Refuses a written file that is one of the inputs (under any of its names), and a filled
    /// folder that holds an input.
    pub fn check(&self) -> Result<()> {
        for (flag, path) in &self.writes {
            let inputs: Vec<(&str, &Path)> = self
                .reads
                .iter()
                .map(|(f, p)| (f.as_str(), p.as_path()))
                .collect();
            refuse_overwriting_inputs((flag, path), &inputs)?;
        }
        for (flag, dir) in &self.fills {
            for (input_flag, input) in &self.reads {
                refuse_input_inside_output((flag, dir), (input_flag, input))?;
            }
        }
        Ok(())
    }
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

        // The same through a command's declaration.
        let io = Io::new()
            .reads("--weights", &weights)
            .reads("--image", &input)
            .writes("--json", &dir.path().join("out.json"));
        io.clone().check().unwrap();
        let err = io.clone().writes("--out", &hard).check().unwrap_err();
        assert!(err.to_string().contains("--out"), "{err}");
        let err = io.fills("--report", dir.path()).check().unwrap_err();
        assert!(err.to_string().contains("lies inside"), "{err}");
    }
}
