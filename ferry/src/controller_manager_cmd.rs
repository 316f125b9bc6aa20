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
                                     namespace, nodeipam, nodelifecycle, replicaset
  --concurrent-deployment-syncs N    Deployment workers (default 5)
  --concurrent-replicaset-syncs N    ReplicaSet workers (default 5)
  --node-monitor-period DUR          how often node heartbeats are checked (default 5s)
  --node-monitor-grace-period DUR    silence before a node is marked Unknown (default 40s)
  --node-eviction-rate F             nodes per second whose pods may be evicted, per zone
                                     (default 0.1)
  --secondary-node-eviction-rate F   the rate in a partially disrupted large zone (default 0.01)
  --unhealthy-zone-threshold F       share of unhealthy nodes (more than 2) that makes a zone
                                     partially disrupted (default 0.55)
  --large-cluster-size-threshold N   zones above N nodes keep evicting at the secondary rate
                                     when partially disrupted; smaller ones stop (default 50)
  --allocate-node-cidrs              give each node a podCIDR from --cluster-cidr (nodeipam)
  --cluster-cidr CIDR                the pods' IPv4 range, like 10.244.0.0/16
  --node-cidr-mask-size N            size of each node's block (default 24)

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
    let mut allocate = false;
    let mut cluster_cidr: Option<String> = None;
    let mut mask_size: u8 = 24;
    let mut args = crate::FlagArgs::new(args);
    while let Some((name, inline)) = args.next_flag() {
        if name == "--help" || name == "-h" {
            return Ok(None);
        }
        if name == "--leader-elect" {
            flags.options.leader_elect = inline.is_none_or(|v| v == "true");
            continue;
        }
        if name == "--allocate-node-cidrs" {
            allocate = inline.is_none_or(|v| v == "true");
            continue;
        }
        let mut value = || args.value(name, inline);
        if crate::leader_election_timing(&mut flags.options.timings, name, &mut value)? {
            continue;
        }
        match name {
            "--kubeconfig" => flags.kubeconfig = Some(PathBuf::from(value()?)),
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
            "--node-monitor-period" => {
                flags.options.node_lifecycle.monitor_period = crate::seconds(&value()?)?
            }
            "--node-monitor-grace-period" => {
                flags.options.node_lifecycle.grace_period = crate::seconds(&value()?)?
            }
            "--node-eviction-rate" => {
                flags.options.node_lifecycle.rates.eviction = rate(name, &value()?)?
            }
            "--secondary-node-eviction-rate" => {
                flags.options.node_lifecycle.rates.secondary = rate(name, &value()?)?
            }
            "--unhealthy-zone-threshold" => {
                flags.options.node_lifecycle.rates.unhealthy_zone_threshold = rate(name, &value()?)?
            }
            "--large-cluster-size-threshold" => {
                flags.options.node_lifecycle.rates.large_cluster_threshold = value()?
                    .parse()
                    .context("--large-cluster-size-threshold must be a number")?
            }
            "--cluster-cidr" => cluster_cidr = Some(value()?),
            "--node-cidr-mask-size" => {
                mask_size = value()?
                    .parse()
                    .context("--node-cidr-mask-size must be a number")?
            }
            other => bail!("unknown flag {other:?} (see `ferry controller-manager --help`)"),
        }
    }
    if allocate {
        let Some(cidr) = cluster_cidr else {
            bail!("--allocate-node-cidrs needs --cluster-cidr");
        };
        controller_manager::nodeipam::Allocator::new(&cidr, mask_size)
            .with_context(|| format!("--cluster-cidr {cidr} --node-cidr-mask-size {mask_size}"))?;
        flags.options.allocate_node_cidrs = Some((cidr, mask_size));
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

/// A non-negative number (a rate or a share).
fn rate(name: &str, value: &str) -> anyhow::Result<f64> {
    value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .with_context(|| format!("{name} must be a non-negative number, not {value:?}"))
}

pub fn main(args: &[String]) -> ExitCode {
    crate::run_command("controller-manager", HELP, parse(args), run)
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let client = crate::client(flags.kubeconfig.as_deref()).await?;
    controller_manager::run(client, flags.options).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse_args(args: &[&str]) -> anyhow::Result<Option<Flags>> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        parse(&args)
    }

    #[test]
    fn leader_election_flags() {
        let options = parse_args(&[
            "--leader-elect",
            "--leader-elect-lease-duration=4s",
            "--leader-elect-renew-deadline",
            "3s",
            "--leader-elect-retry-period=0.5s",
        ])
        .unwrap()
        .unwrap()
        .options;
        assert!(options.leader_elect);
        assert_eq!(options.timings.lease_duration, Duration::from_secs(4));
        assert_eq!(options.timings.renew_deadline, Duration::from_secs(3));
        assert_eq!(options.timings.retry_period, Duration::from_millis(500));
        assert!(parse_args(&["--leader-elect-retry-period=2"]).is_err());
    }

    #[test]
    fn node_flags() {
        let defaults = parse_args(&[]).unwrap().unwrap().options;
        assert_eq!(
            defaults.node_lifecycle.grace_period,
            Duration::from_secs(40)
        );
        assert_eq!(
            defaults.node_lifecycle.monitor_period,
            Duration::from_secs(5)
        );
        assert_eq!(defaults.node_lifecycle.rates.eviction, 0.1);
        assert_eq!(defaults.allocate_node_cidrs, None);
        assert!(defaults.controllers.contains(&"nodelifecycle".to_owned()));

        let options = parse_args(&[
            "--node-monitor-period=1s",
            "--node-monitor-grace-period",
            "2s",
            "--node-eviction-rate=0.5",
            "--secondary-node-eviction-rate=0",
            "--unhealthy-zone-threshold=0.7",
            "--large-cluster-size-threshold=10",
            "--allocate-node-cidrs",
            "--cluster-cidr=10.244.0.0/16",
            "--node-cidr-mask-size=26",
            "--controllers=nodelifecycle,nodeipam",
        ])
        .unwrap()
        .unwrap()
        .options;
        let lifecycle = options.node_lifecycle;
        assert_eq!(lifecycle.monitor_period, Duration::from_secs(1));
        assert_eq!(lifecycle.grace_period, Duration::from_secs(2));
        assert_eq!(lifecycle.rates.eviction, 0.5);
        assert_eq!(lifecycle.rates.secondary, 0.0);
        assert_eq!(lifecycle.rates.unhealthy_zone_threshold, 0.7);
        assert_eq!(lifecycle.rates.large_cluster_threshold, 10);
        assert_eq!(
            options.allocate_node_cidrs,
            Some(("10.244.0.0/16".to_owned(), 26))
        );

        for bad in [
            &["--allocate-node-cidrs"][..],
            &["--allocate-node-cidrs", "--cluster-cidr=10.244.0.0"],
            &[
                "--allocate-node-cidrs",
                "--cluster-cidr=10.244.0.0/16",
                "--node-cidr-mask-size=8",
            ],
            &["--node-eviction-rate=-1"],
        ] {
            assert!(parse_args(bad).is_err(), "{bad:?}");
        }
    }
}
