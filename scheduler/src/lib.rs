//! Ferry's scheduler, kube-scheduler's design in one process: informers feed a node cache
//! ([`cache`], with *assumed* pods) and the scheduling queue ([`queue`]); one thread runs
//! scheduling cycles ([`cycle`]) through the filter plugins ([`plugins`], [`framework`]) and
//! scoring ([`score`]), tries preemption when nothing fits, and binds asynchronously
//! ([`run`]); [`metrics`] keeps kube-scheduler's metrics.

pub mod cache;
pub mod cycle;
pub mod framework;
pub mod metrics;
pub mod plugins;
pub mod queue;
pub mod run;
pub mod score;

pub use run::{Options, Scheduler, run, start};
