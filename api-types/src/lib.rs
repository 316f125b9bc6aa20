//! Ferry's object model, shared by every component. Pure functions over values: this crate does
//! no I/O (no tokio, no network, no files), so it can be tested with tables and used anywhere.
//!
//! - [`registry`]: the served resources (group, version, plural, kind, scope, verbs, …).
//! - [`keys`]: where objects live in the store (`/registry/<resource>/<namespace>/<name>`).
//! - [`labels`] and [`fields`]: label and field selectors, parsed and matched.
//! - [`validation`]: name, label and annotation rules.
//! - [`quantity`]: resource quantities (`100m`, `64Mi`, `1e3`), parsed exactly and compared.
//! - [`yaml`]: YAML (multi-document) to JSON values.
//!
//! Typed objects come from `k8s-openapi` (re-exported as [`k8s`]); the store keeps JSON and
//! generic code works on `serde_json::Value`, decoding into the typed structs at the edges.

pub use k8s_openapi as k8s;

pub mod fields;
pub mod keys;
pub mod labels;
pub mod quantity;
pub mod registry;
pub mod validation;
pub mod yaml;
