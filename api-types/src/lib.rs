//! Ferry's object model, shared by every component. Pure functions over values: this crate does
//! no I/O (no tokio, no network, no files), so it can be tested with tables and used anywhere.
//!
//! - [`registry`]: the served resources as Kubernetes 1.33 discovery describes them (group,
//!   version, plural, singular, short names, kind, scope, verbs, categories, subresources,
//!   storage path), and kubectl-style name resolution.
//! - [`keys`]: where objects live in the store (`/registry/<resource>/<namespace>/<name>`).
//! - [`labels`] and [`fields`]: label and field selectors, parsed, validated and matched, with
//!   each resource's supported field labels and field values.
//! - [`validation`]: name, label and annotation rules with Kubernetes' exact messages, and
//!   `field.Error`-style field errors.
//! - [`quantity`]: resource quantities (`100m`, `64Mi`, `1e3`), parsed exactly, compared by value
//!   and printed canonically.
//! - [`taints`]: whether a toleration tolerates a taint.
//! - [`yaml`]: YAML (multi-document) to JSON values.
//! - [`json`]: JSON pointers read without allocating ([`json::At`]).
//!
//! Typed objects come from `k8s-openapi` (re-exported as [`k8s`]); the store keeps JSON and
//! generic code works on `serde_json::Value`, decoding into the typed structs at the edges.

pub use k8s_openapi as k8s;

pub mod fields;
pub mod json;
pub mod keys;
pub mod labels;
pub mod quantity;
pub mod registry;
pub mod taints;
pub mod validation;
pub mod yaml;
