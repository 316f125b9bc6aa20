//! `ferry controller-manager`: flags modelled on kube-controller-manager's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use controller_manager::{CONTROLLERS, Options};

const HELP: &str = "\
ferry controller-manager — run the controllers against an apiserver

Flags (as kube-controller-manager's):
  --kubeconfig FILE                  the apiserver to use and the credentials (default: the
                                     KUBECONFIG environment variable, then ~/.kube/config)
  --leader-elect                     act only while holding the Lease
                                     kube-system/ferry-controller-manager
  --leader-elect-lease-duration DUR  default 15s
  --leader-elect-renew-deadline DUR  default 10s
  --leader-elect-retry-period DUR    default 2s
  --controllers LIST                 comma-separated; `*` for all (default); this build has:
                                     deployment, endpoint, garbagecollector,
                                     namespace, replicaset
  --concurrent-deployment-syncs N    Deployment workers (default 5)
  --concurrent-replicaset-syncs N    ReplicaSet workers (default 5)

Logs go to stderr; RUST_LOG sets the level (default info).";

struct Flags {
    kubeconfig: Option<PathBuf>,
    options: Options,
}

fn parse(args: &[String]) -> anyhow::Result<Option<Flags>> {
    let mut flags = Flags {
        kubeconfig: None,
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
        let timings = &mut flags.options.timings;
        match name {
            "--kubeconfig" => flags.kubeconfig = Some(PathBuf::from(value()?)),
            "--leader-elect-lease-duration" => timings.lease_duration = crate::seconds(&value()?)?,
            "--leader-elect-renew-deadline" => timings.renew_deadline = crate::seconds(&value()?)?,
            "--leader-elect-retry-period" => timings.retry_period = crate::seconds(&value()?)?,
            "--controllers" => {
                let list = value()?;
                flags.options.controllers = list
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .flat_map(|c| match c {
                        "*" => CONTROLLERS.iter().map(|c| (*c).to_owned()).collect(),
                        c => vec![c.to_owned()],
                    })
                    .collect();
            }
            "--concurrent-deployment-syncs" => {
                flags.options.deployment_workers = value()?
                    .parse()
                    .context("--concurrent-deployment-syncs must be a number")?
            }
            "--concurrent-replicaset-syncs" => {
                flags.options.replicaset_workers = value()?
                    .parse()
                    .context("--concurrent-replicaset-syncs must be a number")?
            }
            other => bail!("unknown flag {other:?} (see `ferry controller-manager --help`)"),
        }
    }
    for name in &flags.options.controllers {
        if !CONTROLLERS.contains(&name.as_str()) {
            bail!(
                "--controllers: unknown controller {name:?} (this build has: {})",
                CONTROLLERS.join(", ")
            );
        }
    }
    Ok(Some(flags))
}

pub fn main(args: &[String]) -> ExitCode {
    crate::run_command("controller-manager", HELP, parse(args), run)
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let client = crate::client(flags.kubeconfig.as_deref()).await?;
    controller_manager::run(client, flags.options).await?;
    Ok(())
}
