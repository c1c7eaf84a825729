//! `cargo xtask`: the project's entry point. `cargo xtask <command> [args]` builds the `ela`
//! binary (crate `ela-cli`) in release mode with the cargo feature of the requested backend
//! (`--backend cpu|wgpu|vulkan|cuda|cuda-llvm`) and runs `ela <command> [args]`: every command of
//! `ela`, passed through as it is, so `cargo xtask train --backend cuda` needs nothing but a
//! CUDA machine. `cargo xtask --help` lists `ela`'s commands, `cargo xtask <command> --help` a
//! command's flags.

mod ela;

use anyhow::Result;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = ela::backend_of(&args)?;
    let binary = ela::build(backend)?;
    ela::run(&binary, &ela::ela_args(&args, backend))
}
