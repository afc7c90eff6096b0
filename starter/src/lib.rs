//! The `tollgate` CLI as a library: client operations, rendering and the dev environment.

pub mod dev;
pub mod ops;
pub mod render;
