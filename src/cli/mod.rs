//! The command line: clap's types and the glue from each command to the
//! library. Nothing in the library depends on this layer.

pub(crate) mod analysis;
