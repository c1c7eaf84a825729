//! The `ela` binary and the command layer, tested as a user runs them: one test binary (one
//! link, every test free to run beside any other), a module per concern.

#[macro_use]
mod tasks;

mod cli;
mod end_to_end;
mod eval;
mod hostile;
mod reproduce;
mod resume;
mod runtime;
mod torchvision;
