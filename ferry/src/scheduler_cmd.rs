//! `ferry scheduler`: flags modelled on kube-scheduler's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use runtime::http::StatusCode;
use scheduler::Options;

const HELP: &str = "\
ferry scheduler — place pending pods on nodes (schedulerName: default-scheduler)

Flags (as kube-scheduler's):
  --kubeconfig FILE                  the apiserver to use and the credentials (default: the
                                     KUBECONFIG environment variable, then ~/.kube/config)
  --leader-elect                     act only while holding the Lease kube-system/ferry-scheduler
  --leader-elect-lease-duration DUR  default 15s
  --leader-elect-renew-deadline DUR  default 10s
  --leader-elect-retry-period DUR    default 2s
  --percentage-of-nodes-to-score N   share of nodes to find feasible before scoring; 0 (default)
                                     is kube-scheduler's adaptive 50 - nodes/125 %, at least 5 %
  --bind-address ADDR:PORT           where /healthz, /readyz and /metrics are served, over plain
                                     HTTP (default 127.0.0.1:10259; port 0 picks a free one; an
                                     empty value turns it off)

Logs go to stderr; RUST_LOG sets the level (default info).";

struct Flags {
    kubeconfig: Option<PathBuf>,
    bind_address: Option<SocketAddr>,
    options: Options,
}

fn parse(args: &[String]) -> anyhow::Result<Option<Flags>> {
    let mut flags = Flags {
        kubeconfig: None,
        bind_address: Some(SocketAddr::from(([127, 0, 0, 1], 10259))),
        options: Options::default(),
    };
    let mut args = crate::FlagArgs::new(args);
    while let Some((name, inline)) = args.next_flag() {
        if name == "--help" || name == "-h" {
            return Ok(None);
        }
        if name == "--leader-elect" {
            flags.options.leader_elect = inline.is_none_or(|v| v == "true");
            continue;
        }
        let mut value = || args.value(name, inline);
        if crate::leader_election_timing(&mut flags.options.timings, name, &mut value)? {
            continue;
        }
        match name {
            "--kubeconfig" => flags.kubeconfig = Some(PathBuf::from(value()?)),
            "--percentage-of-nodes-to-score" => {
                let value = value()?;
                let percentage: u32 =
                    value.parse().ok().filter(|p| *p <= 100).with_context(|| {
                        format!("--percentage-of-nodes-to-score must be 0 to 100, not {value:?}")
                    })?;
                flags.options.settings.percentage_of_nodes_to_score = percentage;
            }
            "--bind-address" => {
                let value = value()?;
                flags.bind_address = if value.is_empty() {
                    None
                } else {
                    Some(value.parse().with_context(|| {
                        format!(
                            "--bind-address must be ADDR:PORT, like 127.0.0.1:10259, not {value:?}"
                        )
                    })?)
                };
            }
            other => bail!("unknown flag {other:?} (see `ferry scheduler --help`)"),
        }
    }
    Ok(Some(flags))
}

pub fn main(args: &[String]) -> ExitCode {
    crate::run_command("scheduler", HELP, parse(args), run)
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let client = crate::client(flags.kubeconfig.as_deref()).await?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    if let Some(address) = flags.bind_address {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        tracing::info!(address = %listener.local_addr()?, "serving /healthz and /metrics");
        tokio::spawn(serve(listener, ready_rx));
    }
    scheduler::run(client, flags.options, Some(ready_tx)).await?;
    Ok(())
}

/// `/healthz` answers at once; `/readyz` and `/metrics` once the scheduler runs.
async fn serve(
    listener: tokio::net::TcpListener,
    ready: tokio::sync::oneshot::Receiver<Arc<scheduler::Scheduler>>,
) {
    let running: Arc<std::sync::OnceLock<Arc<scheduler::Scheduler>>> = Arc::default();
    let slot = Arc::clone(&running);
    tokio::spawn(async move {
        if let Ok(scheduler) = ready.await {
            let _ = slot.set(scheduler);
        }
    });
    runtime::http::serve(
        listener,
        Arc::new(move |path: &str| match (path, running.get()) {
            ("/healthz" | "/livez", _) => Some((StatusCode::OK, "text/plain", "ok".to_owned())),
            ("/readyz", Some(_)) => Some((StatusCode::OK, "text/plain", "ok".to_owned())),
            ("/metrics", Some(s)) => Some((
                StatusCode::OK,
                runtime::http::METRICS_CONTENT_TYPE,
                s.metrics().render(s.pending()),
            )),
            // A standby (or a scheduler still syncing its caches) is alive but not scheduling.
            ("/readyz" | "/metrics", None) => Some((
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "not scheduling yet: waiting for the leader lease or the first sync\n".to_owned(),
            )),
            _ => None,
        }),
    )
    .await;
}
