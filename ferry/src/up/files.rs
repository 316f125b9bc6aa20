//! What `ferry up` keeps in its data directory: the layout, the CA and serving certificate,
//! the tokens, the kubeconfigs, the settings a later `ferry up` reuses, and the `ferry`
//! entries it merges into the user's own kubeconfig.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The name of the cluster, user and context `ferry up` writes.
pub const CONTEXT: &str = "ferry";

/// Where everything of one cluster lives.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Layout {
        Layout { root }
    }

    /// `$XDG_DATA_HOME/ferry`, else `~/.local/share/ferry`.
    pub fn default_root() -> anyhow::Result<PathBuf> {
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(data).join("ferry"));
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .context("HOME is not set: pass --data-dir")?;
        Ok(PathBuf::from(home).join(".local/share/ferry"))
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig")
    }
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn log(&self, component: &str) -> PathBuf {
        self.logs().join(format!("{component}.log"))
    }
    pub fn run(&self) -> PathBuf {
        self.root.join("run")
    }
    pub fn pid_file(&self, component: &str) -> PathBuf {
        self.run().join(format!("{component}.pid"))
    }
    /// Held (flock) by the supervisor while the cluster runs.
    pub fn lock_file(&self) -> PathBuf {
        self.run().join("lock")
    }
    /// The supervisor's view of its components, for `ferry status`.
    pub fn status_file(&self) -> PathBuf {
        self.run().join("status.json")
    }
    /// Which user kubeconfig got the `ferry` context, to undo it on `ferry down`.
    pub fn kubeconfig_update_file(&self) -> PathBuf {
        self.run().join("kubeconfig-update.json")
    }
    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.pki().join("ca.crt")
    }
    pub fn serving_cert(&self) -> PathBuf {
        self.pki().join("apiserver.crt")
    }
    pub fn serving_key(&self) -> PathBuf {
        self.pki().join("apiserver.key")
    }
    pub fn tokens(&self) -> PathBuf {
        self.pki().join("tokens.csv")
    }
    /// A component's kubeconfig (its own token).
    pub fn component_kubeconfig(&self, component: &str) -> PathBuf {
        self.pki().join(format!("{component}.kubeconfig"))
    }
    /// The embedded store (`ferry apiserver --data-dir`).
    pub fn store(&self) -> PathBuf {
        self.root.join("store")
    }
    pub fn etcd_data(&self) -> PathBuf {
        self.root.join("etcd")
    }
    pub fn settings(&self) -> PathBuf {
        self.root.join("cluster.json")
    }

    /// Creates the directories.
    pub fn create(&self) -> anyhow::Result<()> {
        for dir in [self.root.clone(), self.logs(), self.run(), self.pki()] {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(())
    }
}

/// Where the objects are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Store {
    /// The apiserver's embedded store, in `DIR/store`.
    Embedded,
    /// A local etcd started by `ferry up`, data in `DIR/etcd`, on these ports.
    LocalEtcd { client_port: u16, peer_port: u16 },
    /// An etcd cluster someone else runs.
    EtcdServers(String),
}

/// What a later `ferry up` on the same directory reuses unless its flags say otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub store: Store,
    pub port: u16,
    pub nodes: usize,
}

impl Settings {
    pub fn load(layout: &Layout) -> anyhow::Result<Option<Settings>> {
        let path = layout.settings();
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .with_context(|| format!("{} is not readable settings", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self, layout: &Layout) -> anyhow::Result<()> {
        write(
            &layout.settings(),
            &serde_json::to_string_pretty(self)?,
            false,
        )
    }
}

/// Writes `text` to `path` through a temporary file, so a reader never sees half of it;
/// `secret` files are readable by their owner only.
pub fn write(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    let temp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    let result = options
        .open(&temp)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&temp, path));
    result.with_context(|| format!("cannot write {}", path.display()))
}

/// The cluster's CA and the apiserver's serving certificate (for 127.0.0.1, localhost and the
/// host name), generated on the first run and reused afterwards. Returns the CA's PEM.
pub fn ensure_pki(layout: &Layout) -> anyhow::Result<String> {
    let (ca, cert, key) = (
        layout.ca_cert(),
        layout.serving_cert(),
        layout.serving_key(),
    );
    if ca.exists() && cert.exists() && key.exists() {
        return std::fs::read_to_string(&ca)
            .with_context(|| format!("cannot read {}", ca.display()));
    }
    let mut names = Vec::new();
    if let Some(host) = host_name() {
        names.push(host);
    }
    let pair = apiserver::server::tls::CertPair::self_signed(&names)
        .context("cannot generate the cluster's certificates")?;
    let ca_pem = pair.ca_pem.clone().unwrap_or_default();
    write(&key, &pair.key_pem, true)?;
    write(&cert, &pair.cert_pem, false)?;
    write(&ca, &ca_pem, false)?;
    Ok(ca_pem)
}

/// This machine's host name, when it has a usable one.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty() && name != "localhost").then(|| name.to_owned())
}

/// One line of the apiserver's `--token-auth-file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub token: String,
    pub user: String,
    pub groups: Vec<String>,
}

/// The users of a cluster: the admin, the controller-manager, the scheduler and one per node,
/// as Kubernetes names them.
pub fn users(nodes: &[String]) -> Vec<(String, Vec<String>)> {
    let mut users = vec![
        ("admin".to_owned(), vec!["system:masters".to_owned()]),
        ("system:kube-controller-manager".to_owned(), Vec::new()),
        ("system:kube-scheduler".to_owned(), Vec::new()),
    ];
    users.extend(nodes.iter().map(|node| {
        (
            format!("system:node:{node}"),
            vec!["system:nodes".to_owned()],
        )
    }));
    users
}

/// The token file with a token for every user in `users`: the existing tokens are kept,
/// missing users get a new random one. Returns every entry.
pub fn ensure_tokens(
    layout: &Layout,
    users: &[(String, Vec<String>)],
) -> anyhow::Result<Vec<TokenEntry>> {
    let path = layout.tokens();
    let mut entries = match std::fs::read_to_string(&path) {
        Ok(text) => parse_tokens(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let before = entries.len();
    for (user, groups) in users {
        if !entries.iter().any(|e| &e.user == user) {
            entries.push(TokenEntry {
                token: new_token(),
                user: user.clone(),
                groups: groups.clone(),
            });
        }
    }
    if entries.len() != before || !path.exists() {
        write(&path, &format_tokens(&entries), true)?;
    }
    Ok(entries)
}

fn new_token() -> String {
    use rand::Rng as _;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `token,user,uid,"group1,group2"` (kube-apiserver's CSV; the uid is the user name).
fn format_tokens(entries: &[TokenEntry]) -> String {
    entries
        .iter()
        .map(|e| {
            let mut line = format!("{},{},{}", e.token, e.user, e.user);
            if !e.groups.is_empty() {
                line.push_str(&format!(",\"{}\"", e.groups.join(",")));
            }
            line + "\n"
        })
        .collect()
}

fn parse_tokens(text: &str) -> Vec<TokenEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut parts = line.splitn(4, ',');
            let token = parts.next()?.trim().to_owned();
            let user = parts.next()?.trim().to_owned();
            let _uid = parts.next();
            let groups = parts
                .next()
                .map(|g| {
                    g.trim_matches('"')
                        .split(',')
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Some(TokenEntry {
                token,
                user,
                groups,
            })
        })
        .collect()
}

/// The token of `user` among `entries`.
pub fn token_of<'a>(entries: &'a [TokenEntry], user: &str) -> anyhow::Result<&'a str> {
    entries
        .iter()
        .find(|e| e.user == user)
        .map(|e| e.token.as_str())
        .with_context(|| format!("no token for {user}"))
}

/// A kubeconfig with one cluster, user and context, all named `ferry`, current.
pub fn kubeconfig(server: &str, ca_pem: &str, token: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster_entry(server, ca_pem)],
        "users": [user_entry(token)],
        "contexts": [context_entry()],
        "current-context": CONTEXT,
        "preferences": {},
    })
}

fn cluster_entry(server: &str, ca_pem: &str) -> Value {
    json!({
        "name": CONTEXT,
        "cluster": {
            "server": server,
            "certificate-authority-data":
                base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes()),
        },
    })
}

fn user_entry(token: &str) -> Value {
    json!({"name": CONTEXT, "user": {"token": token}})
}

fn context_entry() -> Value {
    json!({"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}})
}

pub fn write_kubeconfig(path: &Path, config: &Value) -> anyhow::Result<()> {
    let yaml = serde_saphyr::to_string(config).context("cannot render a kubeconfig")?;
    write(path, &yaml, true)
}

/// The kubeconfig kubectl uses: the first file in `$KUBECONFIG`, else `~/.kube/config`.
pub fn user_kubeconfig_path() -> anyhow::Result<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty())
    {
        return Ok(first);
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .context("neither KUBECONFIG nor HOME is set: use --no-kubeconfig-update")?;
    Ok(PathBuf::from(home).join(".kube/config"))
}

/// What `merge_into` changed, to undo it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeconfigUpdate {
    pub path: PathBuf,
    /// The current context before `ferry` was made current.
    pub previous_context: Option<String>,
}

fn read_config(path: &Path) -> anyhow::Result<Value> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(json!({"apiVersion": "v1", "kind": "Config"}));
    }
    let config: Value = serde_saphyr::from_str(&text)
        .with_context(|| format!("{} is not a readable kubeconfig", path.display()))?;
    if !config.is_object() {
        bail!("{} is not a kubeconfig (not a mapping)", path.display());
    }
    Ok(config)
}

/// Replaces the entry named `ferry` in the list `key` of `config` by `entry` (or removes it).
fn set_named(config: &mut Value, key: &str, entry: Option<Value>) {
    let list = config
        .as_object_mut()
        .map(|o| o.entry(key).or_insert_with(|| json!([])));
    let Some(list) = list else { return };
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(items) = list.as_array_mut() {
        items.retain(|item| item.get("name").and_then(Value::as_str) != Some(CONTEXT));
        items.extend(entry);
    }
}

/// Adds (or refreshes) the `ferry` cluster, user and context in `config` and makes the context
/// current; returns the context that was current before.
pub fn merge(config: &mut Value, ours: &Value) -> Option<String> {
    let first = |key: &str| ours.get(key).and_then(|l| l.get(0)).cloned();
    for key in ["clusters", "users", "contexts"] {
        set_named(config, key, first(key));
    }
    let previous = config
        .get("current-context")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty() && *c != CONTEXT)
        .map(str::to_owned);
    config["current-context"] = json!(CONTEXT);
    previous
}

/// Removes the `ferry` entries from `config`; the current context goes back to `previous`.
pub fn unmerge(config: &mut Value, previous: Option<&str>) {
    for key in ["clusters", "users", "contexts"] {
        set_named(config, key, None);
    }
    if config.get("current-context").and_then(Value::as_str) == Some(CONTEXT) {
        config["current-context"] = json!(previous.unwrap_or(""));
    }
}

/// Merges `ours` into the user's kubeconfig; the undo record goes into the data directory.
pub fn merge_into_user_kubeconfig(layout: &Layout, ours: &Value) -> anyhow::Result<PathBuf> {
    let path = user_kubeconfig_path()?;
    let mut config = read_config(&path)?;
    let previous = merge(&mut config, ours);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_kubeconfig(&path, &config)?;
    let update = KubeconfigUpdate {
        path: path.clone(),
        previous_context: previous,
    };
    write(
        &layout.kubeconfig_update_file(),
        &serde_json::to_string(&update)?,
        false,
    )?;
    Ok(path)
}

/// Undoes `merge_into_user_kubeconfig`, if it was done. Returns the file it changed.
pub fn remove_from_user_kubeconfig(layout: &Layout) -> anyhow::Result<Option<PathBuf>> {
    let record = layout.kubeconfig_update_file();
    let Ok(text) = std::fs::read_to_string(&record) else {
        return Ok(None);
    };
    let update: KubeconfigUpdate = serde_json::from_str(&text)
        .with_context(|| format!("{} is not readable", record.display()))?;
    if update.path.exists() {
        let mut config = read_config(&update.path)?;
        unmerge(&mut config, update.previous_context.as_deref());
        write_kubeconfig(&update.path, &config)?;
    }
    let _ = std::fs::remove_file(&record);
    Ok(Some(update.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_other_entries_and_unmerging_restores_the_context() {
        let mut config: Value = serde_saphyr::from_str(
            "apiVersion: v1\nkind: Config\ncurrent-context: work\nclusters:\n- name: work\n  cluster: {server: 'https://work:6443'}\n- name: ferry\n  cluster: {server: 'https://old:1'}\nusers:\n- name: work\n  user: {token: w}\ncontexts:\n- name: work\n  context: {cluster: work, user: work}\n",
        )
        .unwrap();
        let ours = kubeconfig("https://127.0.0.1:6443", "CA", "tok");
        let previous = merge(&mut config, &ours);
        assert_eq!(previous.as_deref(), Some("work"));
        assert_eq!(config["current-context"], "ferry");
        let clusters = config["clusters"].as_array().unwrap();
        assert_eq!(
            clusters.len(),
            2,
            "the old ferry entry is replaced: {clusters:?}"
        );
        assert_eq!(clusters[1]["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(config["users"][1]["user"]["token"], "tok");

        // A round trip through YAML keeps it readable.
        let yaml = serde_saphyr::to_string(&config).unwrap();
        let mut config: Value = serde_saphyr::from_str(&yaml).unwrap();
        unmerge(&mut config, previous.as_deref());
        assert_eq!(config["current-context"], "work");
        for key in ["clusters", "users", "contexts"] {
            let names: Vec<&str> = config[key]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["name"].as_str())
                .collect();
            assert_eq!(names, ["work"], "{key}");
        }
    }

    #[test]
    fn tokens_round_trip_and_keep_existing_users() {
        let entries = vec![
            TokenEntry {
                token: "a".into(),
                user: "admin".into(),
                groups: vec!["system:masters".into()],
            },
            TokenEntry {
                token: "b".into(),
                user: "system:node:n1".into(),
                groups: vec!["system:nodes".into(), "x".into()],
            },
        ];
        let text = format_tokens(&entries);
        assert_eq!(
            text,
            "a,admin,admin,\"system:masters\"\nb,system:node:n1,system:node:n1,\"system:nodes,x\"\n"
        );
        assert_eq!(parse_tokens(&text), entries);
        // The apiserver reads the same file.
        apiserver::server::auth::TokenAuth::parse("tokens.csv", &text).unwrap();

        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_owned());
        layout.create().unwrap();
        let first = ensure_tokens(&layout, &users(&["n1".into()])).unwrap();
        let second = ensure_tokens(&layout, &users(&["n1".into(), "n2".into()])).unwrap();
        assert_eq!(second.len(), first.len() + 1);
        assert_eq!(
            token_of(&first, "admin").unwrap(),
            token_of(&second, "admin").unwrap()
        );
    }
}
