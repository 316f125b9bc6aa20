//! `embedded-crash-writer STORE [RUN]`: opens the embedded store at STORE and writes to it from
//! 16 concurrent tasks forever. Each task loops: create `/registry/crash/objects/<RUN>-<task>-<i>`
//! (value: `tests::crash::object_value(key)`), then increment its counter
//! `/registry/crash/counters/<task>` with `guaranteed_update`. After each write the store
//! acknowledged it prints one line and flushes stdout:
//!
//! ```text
//! ACK create <key> <rev>
//! ACK counter <key> <value> <rev>
//! ```
//!
//! The crash test SIGKILLs it at a random moment and checks that every acknowledged write
//! survived. RUN (default: the process id) keeps object keys unique across runs on one file.
//! Any storage error ends the process with a message on stderr and a non-zero status.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use apiserver::storage::embedded::EmbeddedStorage;
use apiserver::storage::{KeyValue, Preconditions, Storage, StorageError};
use bytes::Bytes;
use tests::crash::{Ack, COUNTERS, OBJECTS, counter_value, object_value, parse_counter};

const TASKS: usize = 16;

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args_os().skip(1);
    let path = PathBuf::from(
        args.next()
            .context("usage: embedded-crash-writer STORE [RUN]")?,
    );
    let run = match args.next() {
        Some(run) => run
            .into_string()
            .map_err(|_| anyhow!("RUN must be UTF-8"))?,
        None => std::process::id().to_string(),
    };
    let store = EmbeddedStorage::open(&path)
        .with_context(|| format!("open the embedded store {}", path.display()))?;
    let store: Arc<dyn Storage> = Arc::new(store);

    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        tasks.spawn(write_forever(store.clone(), run.clone(), task));
    }
    // The tasks only return on an error: the first one ends the process.
    while let Some(result) = tasks.join_next().await {
        result.context("a writer task panicked")??;
    }
    Ok(())
}

async fn write_forever(store: Arc<dyn Storage>, run: String, task: usize) -> anyhow::Result<()> {
    let counter = format!("{COUNTERS}{task:02}");
    for i in 0u64.. {
        let key = format!("{OBJECTS}{run}-{task:02}-{i:06}");
        let created = store
            .create(&key, Bytes::from(object_value(&key)))
            .await
            .with_context(|| format!("create {key}"))?;
        ack(&Ack::Create {
            key,
            rev: created.mod_revision,
        })?;

        let mut increment = |current: Option<&KeyValue>| {
            let n = match current {
                None => 0,
                Some(kv) => parse_counter(&kv.value).ok_or_else(|| {
                    StorageError::Internal(format!("counter {} holds no number: {kv:?}", kv.key))
                })?,
            };
            Ok(Bytes::from(counter_value(n + 1)))
        };
        let updated = store
            .guaranteed_update(&counter, &Preconditions::none(), true, &mut increment)
            .await
            .with_context(|| format!("increment {counter}"))?;
        let value = parse_counter(&updated.value)
            .with_context(|| format!("{counter} returned {updated:?}"))?;
        ack(&Ack::Counter {
            key: counter.clone(),
            value,
            rev: updated.mod_revision,
        })?;
    }
    Ok(())
}

/// Prints one acknowledgement line in a single write and flushes it.
fn ack(ack: &Ack) -> anyhow::Result<()> {
    let line = format!("{}\n", ack.to_line());
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).context("write to stdout")?;
    out.flush().context("flush stdout")?;
    Ok(())
}
