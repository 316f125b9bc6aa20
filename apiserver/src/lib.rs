#![allow(clippy::result_large_err)]
// ApiError carries a full Kubernetes Status (details, causes): errors are rare, and boxing would only move the allocation.
//! Ferry's apiserver: the Kubernetes REST API over the storage layer.
//!
//! - [`storage`]: the `Storage` trait (Kubernetes' `storage.Interface`) and its etcd and embedded
//!   backends.
//! - [`errors`]: the one place errors become Kubernetes `Status` objects.
//! - [`discovery`]: `/api`, `/apis` and their group-versions, legacy and aggregated.
//! - [`tables`]: server-side `Table` conversion for `kubectl get`.
//! - [`objects`]: per-kind preparation of writes: defaults, validation, metadata, status.

pub mod discovery;
pub mod errors;
pub mod objects;
pub mod openapi;
pub mod openapi_v2;
pub mod protobuf;
pub mod server;
pub mod storage;
pub mod tables;
