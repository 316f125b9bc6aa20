//! Ferry's integration and end-to-end tests live in `tests/tests/`; this library holds what they
//! (and the benchmarks) share.

pub mod apiserver;
pub mod cluster;
pub mod crash;
pub mod etcd;
pub mod http;
