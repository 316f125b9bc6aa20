//! Ferry's scheduler. Built so far: the filter plugins and the way their verdicts are reported
//! ([`framework`], [`plugins`]) and scoring ([`score`]), pure and table-tested. Not built yet
//! (see ARCHITECTURE.md): the scheduling queue, the node cache, binding and the `ferry scheduler`
//! process.

pub mod framework;
pub mod plugins;
pub mod score;
