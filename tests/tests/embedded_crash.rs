//! Crash safety of the embedded store: a writer process (`embedded-crash-writer`) is SIGKILLed in
//! the middle of its writes, and every write it acknowledged must be there when the store is
//! reopened, with the history intact. Also: a store held open by one process cannot be opened by
//! another (a clean `Unavailable` error, no corruption), and opens fine once that process dies.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use apiserver::storage::embedded::EmbeddedStorage;
use apiserver::storage::{
    KeyValue, ListOptions, Preconditions, Revision, Storage, StorageError, WatchItem,
};
use bytes::Bytes;
use tests::crash::{Ack, COUNTERS, OBJECTS, PREFIX, counter_value, object_value, parse_counter};

const WRITER: &str = env!("CARGO_BIN_EXE_embedded-crash-writer");
/// Acknowledged writes to wait for before the kill.
const MIN_ACKS: usize = 2000;
/// And at least this long.
const MIN_RUN: Duration = Duration::from_millis(300);
/// The longest the writer may stay silent.
const SILENCE: Duration = Duration::from_secs(60);
const WATCH_TIMEOUT: Duration = Duration::from_secs(10);

/// A running writer process and the acknowledgements read from it so far.
struct Writer {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
    acks: Vec<Ack>,
    started: Instant,
}

impl Writer {
    fn spawn(store: &Path, run: &str, dir: &Path) -> Writer {
        let stderr = dir.join(format!("writer-{run}.stderr"));
        let mut child = Command::new(WRITER)
            .arg(store)
            .arg(run)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("create the writer's stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {WRITER}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    // A line cut short by the kill was never acknowledged: only whole lines count.
                    Ok(n) if n > 0 && line.ends_with('\n') => {
                        line.pop();
                        if tx.send(line).is_err() {
                            return;
                        }
                    }
                    _ => return,
                }
            }
        });
        Writer {
            child,
            lines,
            stderr,
            acks: Vec::new(),
            started: Instant::now(),
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn take_line(&mut self, line: &str) {
        let ack = Ack::parse(line)
            .unwrap_or_else(|| panic!("the writer printed a line that is not an ACK: {line:?}"));
        self.acks.push(ack);
    }

    /// Reads acknowledgements until there are at least `n` of them and `min_run` has passed.
    fn read_until(&mut self, n: usize, min_run: Duration) {
        while self.acks.len() < n || self.started.elapsed() < min_run {
            match self.lines.recv_timeout(SILENCE) {
                Ok(line) => self.take_line(&line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "the writer printed nothing for {SILENCE:?} after {} acks; its stderr:\n{}",
                        self.acks.len(),
                        self.stderr()
                    );
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait();
                    panic!(
                        "the writer stopped after {} acks (before it was killed): {status:?}; its stderr:\n{}",
                        self.acks.len(),
                        self.stderr()
                    );
                }
            }
        }
    }

    /// SIGKILLs the writer, reads every acknowledgement it printed before dying, and reaps it.
    fn kill(mut self) -> Vec<Ack> {
        // `Child::kill` sends SIGKILL on Unix.
        self.child.kill().expect("SIGKILL the writer");
        let deadline = Instant::now() + SILENCE;
        loop {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.take_line(&line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the writer's stdout did not close after SIGKILL")
                }
            }
        }
        let status = self.child.wait().expect("reap the writer");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "the writer must have died of our SIGKILL, not on its own: {status:?}; its stderr:\n{}",
            self.stderr()
        );
        self.acks
    }
}

/// What the acknowledgements promise, across every run on one file.
#[derive(Default)]
struct Promised {
    /// Object key -> the revision that created it.
    objects: BTreeMap<String, Revision>,
    /// Counter key -> the highest acknowledged value.
    counters: BTreeMap<String, i64>,
    /// The highest acknowledged revision.
    max_rev: Revision,
}

impl Promised {
    fn add(&mut self, acks: &[Ack]) {
        // Per key, acknowledged revisions increase: a counter's acks come from one task, in order.
        let mut counter_revs: HashMap<&str, Revision> = HashMap::new();
        for ack in acks {
            self.max_rev = self.max_rev.max(ack.rev());
            match ack {
                Ack::Create { key, rev } => {
                    let previous = self.objects.insert(key.clone(), *rev);
                    assert_eq!(previous, None, "{key} acknowledged as created twice");
                }
                Ack::Counter { key, value, rev } => {
                    let last = counter_revs.entry(key).or_insert(0);
                    assert!(
                        *rev > *last,
                        "{key}: acknowledged revisions go back ({last} then {rev})"
                    );
                    *last = *rev;
                    let max = self.counters.entry(key.clone()).or_insert(0);
                    assert!(
                        *value > *max,
                        "{key}: acknowledged values must increase ({max} then {value})"
                    );
                    *max = *value;
                }
            }
        }
    }
}

/// A runtime of its own for each use of the store: dropping it ends every task the backend
/// spawned, so nothing keeps the file open when the next writer process starts.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a tokio runtime")
}

fn open(path: &Path) -> Result<EmbeddedStorage, StorageError> {
    EmbeddedStorage::open(path)
}

/// Reopens the store after a crash and checks everything the acknowledgements promise, then
/// that the store takes new writes (which are added to the promises).
async fn verify(path: &Path, promised: &mut Promised, cycle: usize) {
    let store = open(path)
        .unwrap_or_else(|e| panic!("cycle {cycle}: reopening the store after SIGKILL failed: {e}"));
    let store: &dyn Storage = &store;
    let current = store.current_revision().await.expect("current_revision");
    assert!(
        current >= promised.max_rev,
        "cycle {cycle}: current revision {current} is below an acknowledged revision {}",
        promised.max_rev
    );

    // Every acknowledged object, with its value and revision.
    for (key, rev) in &promised.objects {
        let kv = store.get(key, None).await.unwrap_or_else(|e| {
            panic!("cycle {cycle}: acknowledged object {key} (revision {rev}) lost: {e}")
        });
        assert_eq!(
            kv.value,
            Bytes::from(object_value(key)),
            "cycle {cycle}: {key} has the wrong value"
        );
        assert_eq!(
            (kv.create_revision, kv.mod_revision),
            (*rev, *rev),
            "cycle {cycle}: {key} revisions"
        );
    }
    // Every counter at least at its highest acknowledged value.
    for (key, value) in &promised.counters {
        let kv = store
            .get(key, None)
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: counter {key} lost: {e}"));
        let stored =
            parse_counter(&kv.value).unwrap_or_else(|| panic!("cycle {cycle}: {key} holds {kv:?}"));
        assert!(
            stored >= *value,
            "cycle {cycle}: {key} is {stored}, but {value} was acknowledged"
        );
    }

    // The listing: consistent with count, in key order, every value whole.
    let list = store
        .list(PREFIX, &ListOptions::default())
        .await
        .expect("list");
    assert_eq!(list.revision, current, "cycle {cycle}: the list's revision");
    assert_eq!(
        list.items.len() as i64,
        store.count(PREFIX).await.expect("count"),
        "cycle {cycle}: list vs count"
    );
    assert!(
        list.items.windows(2).all(|w| w[0].key < w[1].key),
        "cycle {cycle}: list not in key order"
    );
    let objects = store.count(OBJECTS).await.expect("count objects") as usize;
    assert!(
        objects >= promised.objects.len(),
        "cycle {cycle}: {objects} objects < {} acknowledged",
        promised.objects.len()
    );
    for kv in &list.items {
        if kv.key.starts_with(OBJECTS) {
            assert_eq!(
                kv.value,
                Bytes::from(object_value(&kv.key)),
                "cycle {cycle}: torn object {kv:?}"
            );
        } else {
            assert!(
                kv.key.starts_with(COUNTERS) && parse_counter(&kv.value).is_some(),
                "cycle {cycle}: stray {kv:?}"
            );
        }
        assert!(
            kv.mod_revision <= current && kv.create_revision <= kv.mod_revision,
            "cycle {cycle}: {kv:?}"
        );
    }

    // The history replays: every revision after the first, once, in order, and it adds up to
    // the listed state.
    let mut watch = store.watch(PREFIX, 1).await.expect("watch from revision 1");
    let mut replayed: BTreeMap<String, (Bytes, Revision)> = BTreeMap::new();
    let mut expected_rev = 2;
    while expected_rev <= current {
        let item = match tokio::time::timeout(WATCH_TIMEOUT, watch.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => {
                panic!("cycle {cycle}: the replay ended at revision {expected_rev} of {current}")
            }
            Err(_) => {
                panic!("cycle {cycle}: the replay stalled at revision {expected_rev} of {current}")
            }
        };
        match item {
            Ok(WatchItem::Event(e)) => {
                assert_eq!(
                    e.revision, expected_rev,
                    "cycle {cycle}: replayed revisions must be 2, 3, ... in order"
                );
                replayed.insert(e.key.clone(), (e.value.clone(), e.revision));
                expected_rev += 1;
            }
            Ok(WatchItem::Progress(_)) => {}
            Err(e) => panic!("cycle {cycle}: the replay failed at revision {expected_rev}: {e}"),
        }
    }
    drop(watch);
    eprintln!(
        "cycle {cycle}: reopened at revision {current} (highest acknowledged {}), {} keys, {} objects acknowledged",
        promised.max_rev,
        list.items.len(),
        promised.objects.len()
    );
    let listed: BTreeMap<&str, &KeyValue> =
        list.items.iter().map(|kv| (kv.key.as_str(), kv)).collect();
    for (key, (value, rev)) in &replayed {
        let kv = listed
            .get(key.as_str())
            .unwrap_or_else(|| panic!("cycle {cycle}: replayed {key} is not listed"));
        assert_eq!(
            (&kv.value, kv.mod_revision),
            (value, *rev),
            "cycle {cycle}: {key}: replay and list disagree"
        );
    }
    for kv in &list.items {
        if !replayed.contains_key(&kv.key) {
            assert_eq!(
                kv.mod_revision, 1,
                "cycle {cycle}: {kv:?} is listed but its write was not replayed"
            );
        }
    }

    // New writes are accepted, and become promises for the next cycle.
    let key = format!("{OBJECTS}verify-{cycle}");
    let created = store
        .create(&key, Bytes::from(object_value(&key)))
        .await
        .expect("create after reopening");
    assert_eq!(created.mod_revision, current + 1);
    let counter = format!("{COUNTERS}00");
    let mut increment = |cur: Option<&KeyValue>| {
        let n = cur.and_then(|kv| parse_counter(&kv.value)).unwrap_or(0);
        Ok(Bytes::from(counter_value(n + 1)))
    };
    let updated = store
        .guaranteed_update(&counter, &Preconditions::none(), true, &mut increment)
        .await
        .expect("update after reopening");
    assert_eq!(updated.mod_revision, current + 2);
    promised.add(&[
        Ack::Create {
            key,
            rev: created.mod_revision,
        },
        Ack::Counter {
            key: counter,
            value: parse_counter(&updated.value).expect("a counter"),
            rev: updated.mod_revision,
        },
    ]);
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::Builder::new()
        .prefix("ferry-crash-")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join("store.redb");
    let mut promised = Promised::default();
    for cycle in 1..=3 {
        let mut writer = Writer::spawn(&path, &cycle.to_string(), dir.path());
        writer.read_until(MIN_ACKS, MIN_RUN);
        let acks = writer.kill();
        assert!(acks.len() >= MIN_ACKS);
        promised.add(&acks);
        let rt = runtime();
        rt.block_on(verify(&path, &mut promised, cycle));
        // The store, its tasks and the runtime are gone: the file is closed for the next writer.
        drop(rt);
    }
    assert!(
        promised.objects.len() >= 3 * MIN_ACKS / 2,
        "{} objects",
        promised.objects.len()
    );
}

#[test]
fn a_store_open_in_another_process_is_unavailable() {
    let dir = tempfile::Builder::new()
        .prefix("ferry-lock-")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join("store.redb");
    let mut writer = Writer::spawn(&path, "locked", dir.path());
    writer.read_until(1, Duration::ZERO);

    // The writer holds the file: opening it here fails cleanly, several times.
    let rt = runtime();
    for attempt in 0..3 {
        match rt.block_on(async { open(&path) }) {
            Err(StorageError::Unavailable(message)) => assert!(
                message.to_lowercase().contains("in use"),
                "the Unavailable error must say the file is in use by another process: {message:?}"
            ),
            Err(other) => panic!(
                "attempt {attempt}: expected Unavailable (in use by another process), got {other:?}"
            ),
            Ok(_) => panic!("attempt {attempt}: opened a store that another process holds open"),
        }
    }
    // The writer went on undisturbed.
    let before = writer.acks.len();
    writer.read_until(before + 200, Duration::ZERO);
    let acks = writer.kill();

    let mut promised = Promised::default();
    promised.add(&acks);
    rt.block_on(verify(&path, &mut promised, 0));
}
