//! `ferry kubelet`: simulated nodes, with flags modelled on the kubelet's.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use kubelet::{Options, Taint};

const HELP: &str = "\
ferry kubelet — simulated nodes: register Nodes, heartbeat through Leases in kube-node-lease,
and run the pods bound to them through a kubelet's lifecycle (nothing is executed)

Flags:
  --kubeconfig FILE                       the apiserver to use and the credentials (default:
                                          the KUBECONFIG environment variable, then
                                          ~/.kube/config)
  --node-name NAME                        play one node (default: ferry-node)
  --nodes N --node-name-prefix P          play N nodes, P-0 .. P-(N-1) (prefix default: ferry-node)
  --first-node-index N                    the cluster-wide index of this process's first node;
                                          picks the default podCIDR 10.244.<index>.0/24 and
                                          InternalIP 172.20.x.y, so that several kubelet
                                          processes never overlap (default 0)
  --cpu QUANTITY                          capacity of each node (default 4)
  --memory QUANTITY                       (default 32Gi)
  --max-pods N                            (default 110)
  --node-labels k=v,k2=v2                 extra node labels
  --zone ZONE                             the topology.kubernetes.io/zone label
  --register-with-taints k=v:Effect,...   taints a newly registered Node gets (Effect:
                                          NoSchedule, PreferNoSchedule or NoExecute)
  --heartbeat-interval DUR                how often node Leases are renewed (default 10s)
  --node-status-update-frequency DUR      how often the full node status is written (default 5m)
  --pod-startup-delay DUR                 how long containers take to start (default 500ms; 0
                                          allowed)

Durations: 10s, 0.5s, 500ms, 5m. Logs go to stderr; RUST_LOG sets the level (default info).";

struct Flags {
    kubeconfig: Option<PathBuf>,
    options: Options,
}

/// A duration: `500ms`, `10s` (as `crate::seconds`), `5m`, `1h`, or `0`.
fn duration(value: &str) -> anyhow::Result<Duration> {
    let scaled = |number: &str, unit: f64| -> anyhow::Result<Duration> {
        let n: f64 = number
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite() && *n >= 0.0)
            .with_context(|| format!("{value:?} is not a duration"))?;
        Ok(Duration::from_secs_f64(n * unit))
    };
    if value == "0" {
        Ok(Duration::ZERO)
    } else if let Some(ms) = value.strip_suffix("ms") {
        scaled(ms, 0.001)
    } else if let Some(m) = value.strip_suffix('m') {
        scaled(m, 60.0)
    } else if let Some(h) = value.strip_suffix('h') {
        scaled(h, 3600.0)
    } else {
        crate::seconds(value)
            .with_context(|| format!("{value:?}: durations are like 10s, 500ms or 5m"))
    }
}

/// `k=v,k2=v2`.
fn labels(value: &str) -> anyhow::Result<Vec<(String, String)>> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .with_context(|| format!("--node-labels: {pair:?} is not key=value"))?;
            Ok((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// `key=value:Effect` or `key:Effect`, comma-separated.
fn taints(value: &str) -> anyhow::Result<Vec<Taint>> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|spec| {
            let (key_value, effect) = spec.rsplit_once(':').with_context(|| {
                format!("--register-with-taints: {spec:?} is not key=value:Effect")
            })?;
            if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
                bail!(
                    "--register-with-taints: effect {effect:?} must be NoSchedule, \
                     PreferNoSchedule or NoExecute"
                );
            }
            let (key, value) = match key_value.split_once('=') {
                Some((k, v)) => (k, Some(v.to_owned())),
                None => (key_value, None),
            };
            if key.is_empty() {
                bail!("--register-with-taints: {spec:?} has no key");
            }
            Ok(Taint {
                key: key.to_owned(),
                value,
                effect: effect.to_owned(),
            })
        })
        .collect()
}

fn parse(args: &[String]) -> anyhow::Result<Option<Flags>> {
    let mut flags = Flags {
        kubeconfig: None,
        options: Options::default(),
    };
    let mut node_name = None;
    let mut nodes = None;
    let mut prefix = None;
    let mut args = crate::FlagArgs::new(args);
    while let Some((name, inline)) = args.next_flag() {
        if name == "--help" || name == "-h" {
            return Ok(None);
        }
        let mut value = || args.value(name, inline);
        let options = &mut flags.options;
        match name {
            "--kubeconfig" => flags.kubeconfig = Some(PathBuf::from(value()?)),
            "--node-name" => node_name = Some(value()?),
            "--nodes" => {
                let value = value()?;
                let n: usize = value.parse().ok().filter(|n| *n > 0).with_context(|| {
                    format!("--nodes must be a number of nodes, at least 1, not {value:?}")
                })?;
                nodes = Some(n);
            }
            "--node-name-prefix" => prefix = Some(value()?),
            "--first-node-index" => {
                let value = value()?;
                options.first_index = value.parse().with_context(|| {
                    format!("--first-node-index must be a number, not {value:?}")
                })?;
            }
            "--cpu" => options.cpu = value()?,
            "--memory" => options.memory = value()?,
            "--max-pods" => {
                let value = value()?;
                options.max_pods = value
                    .parse()
                    .with_context(|| format!("--max-pods must be a number, not {value:?}"))?;
            }
            "--node-labels" => options.labels.extend(labels(&value()?)?),
            "--zone" => options.zone = Some(value()?).filter(|z| !z.is_empty()),
            "--register-with-taints" => options.taints.extend(taints(&value()?)?),
            "--heartbeat-interval" => options.heartbeat_interval = duration(&value()?)?,
            "--node-status-update-frequency" => {
                options.node_status_update_frequency = duration(&value()?)?;
            }
            "--pod-startup-delay" => options.pod_startup_delay = duration(&value()?)?,
            other => bail!("unknown flag {other:?} (see `ferry kubelet --help`)"),
        }
    }
    flags.options.node_names = match (node_name, nodes) {
        (Some(_), Some(_)) => bail!("--node-name and --nodes exclude each other"),
        (Some(name), None) => {
            if prefix.is_some() {
                bail!("--node-name-prefix goes with --nodes, not --node-name");
            }
            vec![name]
        }
        (None, Some(n)) => Options::numbered_nodes(prefix.as_deref().unwrap_or("ferry-node"), n),
        (None, None) if prefix.is_some() => bail!("--node-name-prefix needs --nodes"),
        (None, None) => Options::default().node_names,
    };
    flags
        .options
        .validate()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(flags))
}

pub fn main(args: &[String]) -> ExitCode {
    crate::run_command("kubelet", HELP, parse(args), run)
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let client = crate::client(flags.kubeconfig.as_deref()).await?;
    kubelet::run(client, flags.options).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Options {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        parse(&args)
            .expect("valid flags")
            .expect("not --help")
            .options
    }

    fn parse_err(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        match parse(&args) {
            Ok(_) => panic!("{args:?} should be refused"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn defaults() {
        let options = parse_ok(&[]);
        assert_eq!(options.node_names, ["ferry-node"]);
        assert_eq!(options.cpu, "4");
        assert_eq!(options.memory, "32Gi");
        assert_eq!(options.max_pods, 110);
        assert_eq!(options.heartbeat_interval, Duration::from_secs(10));
        assert_eq!(
            options.node_status_update_frequency,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn all_flags() {
        let options = parse_ok(&[
            "--nodes=3",
            "--node-name-prefix",
            "sim",
            "--cpu=8",
            "--memory",
            "16Gi",
            "--max-pods=20",
            "--node-labels=a=1,b.example.com/c=2",
            "--zone=z1",
            "--register-with-taints=dedicated=sim:NoSchedule,gpu:NoExecute",
            "--heartbeat-interval=2s",
            "--node-status-update-frequency=1m",
            "--pod-startup-delay=0",
            "--first-node-index=7",
        ]);
        assert_eq!(options.node_names, ["sim-0", "sim-1", "sim-2"]);
        assert_eq!(options.first_index, 7);
        assert_eq!(
            (options.cpu.as_str(), options.memory.as_str()),
            ("8", "16Gi")
        );
        assert_eq!(options.max_pods, 20);
        assert_eq!(
            options.labels.get("b.example.com/c").map(String::as_str),
            Some("2")
        );
        assert_eq!(options.zone.as_deref(), Some("z1"));
        assert_eq!(
            options.taints,
            [
                Taint {
                    key: "dedicated".to_owned(),
                    value: Some("sim".to_owned()),
                    effect: "NoSchedule".to_owned()
                },
                Taint {
                    key: "gpu".to_owned(),
                    value: None,
                    effect: "NoExecute".to_owned()
                },
            ]
        );
        assert_eq!(options.heartbeat_interval, Duration::from_secs(2));
        assert_eq!(
            options.node_status_update_frequency,
            Duration::from_secs(60)
        );
        assert_eq!(options.pod_startup_delay, Duration::ZERO);
        assert_eq!(
            parse_ok(&["--node-name", "n1", "--pod-startup-delay=250ms"]).pod_startup_delay,
            Duration::from_millis(250)
        );
    }

    #[test]
    fn bad_values_are_explained() {
        assert!(parse_err(&["--nodes=0"]).contains("at least 1"));
        assert!(parse_err(&["--nodes=x"]).contains("--nodes"));
        assert!(parse_err(&["--node-name=a", "--nodes=2"]).contains("exclude"));
        assert!(parse_err(&["--node-name-prefix=p"]).contains("needs --nodes"));
        assert!(parse_err(&["--node-name=Bad_Name"]).contains("Bad_Name"));
        assert!(parse_err(&["--cpu=lots"]).contains("not a quantity"));
        assert!(parse_err(&["--max-pods=-1"]).contains("--max-pods"));
        assert!(parse_err(&["--node-labels=novalue"]).contains("key=value"));
        assert!(parse_err(&["--node-labels=a=b c"]).contains("node label"));
        assert!(parse_err(&["--register-with-taints=k=v:Sometimes"]).contains("effect"));
        assert!(parse_err(&["--register-with-taints=k=v"]).contains("key=value:Effect"));
        assert!(parse_err(&["--heartbeat-interval=10"]).contains("durations"));
        assert!(parse_err(&["--heartbeat-interval=0"]).contains("more than 0"));
        assert!(parse_err(&["--pod-startup-delay=-1s"]).contains("not a duration"));
        assert!(parse_err(&["--kubeconfig"]).contains("needs a value"));
        assert!(parse_err(&["--frobnicate"]).contains("unknown flag"));
    }
}
