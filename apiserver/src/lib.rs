//! Ferry's apiserver.
//!
//! So far this crate holds the storage layer ([`storage`]): the trait every backend implements
//! (modelled on Kubernetes' `storage.Interface`), the etcd backend and the embedded single-file
//! backend. The REST API on top of it is not built yet.

pub mod storage;
