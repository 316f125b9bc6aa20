//! `ferry apiserver`: flags modelled on kube-apiserver's.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use apiserver::server::{self, ServerConfig, auth::TokenAuth, tls::CertPair};
use apiserver::storage::Storage;
use apiserver::storage::embedded::{EmbeddedOptions, EmbeddedStorage};
use apiserver::storage::etcd::{EtcdConfig, EtcdStorage};

const HELP: &str = "\
ferry apiserver — serve the Kubernetes API over HTTPS

Flags (as kube-apiserver's):
  --etcd-servers URLS              comma-separated etcd client URLs; without it, the embedded
                                   store <data-dir>/ferry.redb
  --etcd-prefix PREFIX             key prefix in etcd (default /registry)
  --etcd-compaction-interval DUR   compact the store's history this often (default 5m; 0 = never)
  --data-dir DIR                   embedded store and generated certificates (default .ferry)
  --bind-address IP                address to listen on (default 0.0.0.0)
  --secure-port PORT               HTTPS port (default 6443; 0 = any free port)
  --tls-cert-file FILE             serving certificate (PEM); with --tls-private-key-file
  --tls-private-key-file FILE      its key; without both, a self-signed pair is generated
  --cert-dir DIR                   where a generated pair is kept (default <data-dir>/pki)
  --token-auth-file FILE           bearer tokens, CSV: token,user,uid,\"group1,group2\"
  --service-cluster-ip-range CIDR  where Services' cluster IPs come from (default 10.96.0.0/12)

Logs go to stderr; RUST_LOG sets the level (default info).";

struct Flags {
    etcd_servers: Vec<String>,
    etcd_prefix: String,
    compaction: Option<Duration>,
    data_dir: PathBuf,
    bind: IpAddr,
    port: u16,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    cert_dir: Option<PathBuf>,
    token_file: Option<PathBuf>,
    service_range: server::ipalloc::ServiceRange,
}

fn parse(args: &[String]) -> anyhow::Result<Option<Flags>> {
    let mut flags = Flags {
        etcd_servers: Vec::new(),
        etcd_prefix: "/registry".into(),
        compaction: Some(Duration::from_secs(300)),
        data_dir: PathBuf::from(".ferry"),
        bind: IpAddr::from([0, 0, 0, 0]),
        port: 6443,
        cert: None,
        key: None,
        cert_dir: None,
        token_file: None,
        service_range: server::ipalloc::ServiceRange::parse("10.96.0.0/12")
            .map_err(anyhow::Error::msg)?,
    };
    let mut args = crate::FlagArgs::new(args);
    while let Some((name, inline)) = args.next_flag() {
        if name == "--help" || name == "-h" {
            return Ok(None);
        }
        let mut value = || args.value(name, inline);
        match name {
            "--etcd-servers" => {
                flags.etcd_servers = value()?
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "--etcd-prefix" => flags.etcd_prefix = value()?,
            "--etcd-compaction-interval" => flags.compaction = parse_duration(&value()?)?,
            "--data-dir" => flags.data_dir = PathBuf::from(value()?),
            "--bind-address" => {
                flags.bind = value()?
                    .parse()
                    .context("--bind-address must be an IP address")?
            }
            "--secure-port" => {
                flags.port = value()?
                    .parse()
                    .context("--secure-port must be a port number")?
            }
            "--tls-cert-file" => flags.cert = Some(PathBuf::from(value()?)),
            "--tls-private-key-file" => flags.key = Some(PathBuf::from(value()?)),
            "--cert-dir" => flags.cert_dir = Some(PathBuf::from(value()?)),
            "--token-auth-file" => flags.token_file = Some(PathBuf::from(value()?)),
            "--service-cluster-ip-range" => {
                flags.service_range = server::ipalloc::ServiceRange::parse(&value()?)
                    .map_err(|e| anyhow::anyhow!("--service-cluster-ip-range: {e}"))?
            }
            other => bail!("unknown flag {other:?} (see `ferry apiserver --help`)"),
        }
    }
    if flags.cert.is_some() != flags.key.is_some() {
        bail!("--tls-cert-file and --tls-private-key-file go together");
    }
    if !flags.etcd_prefix.starts_with('/') {
        bail!("--etcd-prefix must start with '/'");
    }
    Ok(Some(flags))
}

/// Go-style durations as kube-apiserver takes them: `5m`, `30s`, `1h30m`, `0`.
fn parse_duration(s: &str) -> anyhow::Result<Option<Duration>> {
    if s == "0" || s == "0s" {
        return Ok(None);
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap_or('s'));
        }
        let n: f64 = number
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        number.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => bail!("invalid duration {s:?}: unknown unit {unit:?}"),
        };
    }
    if !number.is_empty() {
        bail!("invalid duration {s:?}: missing unit");
    }
    Ok((total > 0.0).then(|| Duration::from_secs_f64(total)))
}

pub fn main(args: &[String]) -> ExitCode {
    crate::run_command("apiserver", HELP, parse(args), run)
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let store: Arc<dyn Storage> = if flags.etcd_servers.is_empty() {
        std::fs::create_dir_all(&flags.data_dir)
            .with_context(|| format!("cannot create {}", flags.data_dir.display()))?;
        let path = apiserver::storage::embedded::default_path(&flags.data_dir);
        Arc::new(EmbeddedStorage::open_with(
            &path,
            EmbeddedOptions {
                compaction_interval: flags.compaction,
            },
        )?)
    } else {
        let mut config = EtcdConfig::new(flags.etcd_servers.clone());
        config.compaction_interval = flags.compaction;
        Arc::new(EtcdStorage::connect(config).await?)
    };
    let tls = match (&flags.cert, &flags.key) {
        (Some(cert), Some(key)) => CertPair::load(cert, key)?,
        _ => CertPair::in_cert_dir(
            &flags
                .cert_dir
                .clone()
                .unwrap_or_else(|| flags.data_dir.join("pki")),
        )?,
    };
    let tokens = match &flags.token_file {
        Some(path) => TokenAuth::load(path)?,
        None => {
            tracing::warn!(
                "no --token-auth-file: every request but /version and the health checks will be refused (401)"
            );
            TokenAuth::default()
        }
    };
    let running = server::serve(ServerConfig {
        bind: SocketAddr::new(flags.bind, flags.port),
        tls,
        tokens,
        store,
        prefix: flags.etcd_prefix,
        ferry_version: env!("CARGO_PKG_VERSION").to_owned(),
        bookmark_interval: server::DEFAULT_BOOKMARK_INTERVAL,
        service_range: flags.service_range,
        watch_queue_capacity: server::cache::DEFAULT_QUEUE_CAPACITY,
    })
    .await?;
    eprintln!("ferry apiserver: serving on https://{}", running.addr);
    // SIGTERM too: that is how `ferry up`, `ferry down` and service managers stop it.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot handle SIGTERM")?;
    tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.context("waiting for a signal")?,
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(
            parse_duration("5m").unwrap(),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_duration("1h30m").unwrap(),
            Some(Duration::from_secs(5400))
        );
        assert_eq!(parse_duration("0").unwrap(), None);
        assert_eq!(
            parse_duration("250ms").unwrap(),
            Some(Duration::from_millis(250))
        );
        for bad in ["5", "5x", "m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_parse() {
        let args: Vec<String> = [
            "--etcd-servers=http://a:2379,http://b:2379",
            "--secure-port",
            "0",
            "--bind-address=127.0.0.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let flags = parse(&args).unwrap().unwrap();
        assert_eq!(flags.etcd_servers.len(), 2);
        assert_eq!(flags.port, 0);
        assert!(parse(&["--nope".to_string()]).is_err());
        assert!(parse(&["--tls-cert-file=x".to_string()]).is_err());
    }
}
