//! The ownership graph and its decisions, pure (Kubernetes' garbage collector `graph_builder`
//! and `attemptToDeleteItem`, reduced to what a decision needs).

use std::collections::{BTreeMap, BTreeSet};

/// What the collector knows of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub uid: String,
    /// Index into the collector's resource list.
    pub resource: usize,
    pub namespace: Option<String>,
    pub name: String,
    pub owners: Vec<Owner>,
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub block_owner_deletion: bool,
}

/// Every object with its owners, and who depends on whom.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
    dependents: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Records `node` (new or changed); returns the uids to look at because of it: the node,
    /// and its dependents when it began deleting.
    pub fn upsert(&mut self, node: Node) -> Vec<String> {
        let uid = node.uid.clone();
        if let Some(old) = self.nodes.get(&uid) {
            for owner in &old.owners {
                if let Some(set) = self.dependents.get_mut(&owner.uid) {
                    set.remove(&uid);
                }
            }
        }
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        let mut look = vec![uid.clone()];
        if node.deleting {
            look.extend(self.dependents_of(&uid));
        }
        self.nodes.insert(uid, node);
        look
    }

    /// Forgets a deleted object; returns what to look at: its dependents (now maybe orphans)
    /// and its owners (a foreground deletion may be waiting for it).
    pub fn remove(&mut self, uid: &str) -> Vec<String> {
        let mut look = self.dependents_of(uid);
        if let Some(node) = self.nodes.remove(uid) {
            for owner in &node.owners {
                if let Some(set) = self.dependents.get_mut(&owner.uid) {
                    set.remove(uid);
                }
                look.push(owner.uid.clone());
            }
        }
        look
    }

    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .map(|set| {
                set.iter()
                    .filter(|d| self.nodes.contains_key(*d))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The uids of the objects of `resource` for which `pick` holds.
    pub fn uids_of(&self, resource: usize, pick: impl Fn(&str) -> bool) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(uid, node)| node.resource == resource && pick(uid))
            .map(|(uid, _)| uid.clone())
            .collect()
    }
}

/// What to do about one object.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    /// Its owners are all gone: delete it (`Foreground` when an owner went that way and
    /// waits for it).
    Delete {
        foreground: bool,
    },
    /// Some owners are gone: drop the references to them.
    DropOwners(Vec<String>),
    /// Deleting in the foreground: delete these dependents (foreground), and once none that
    /// blocks is left, remove the `foregroundDeletion` finalizer.
    Foreground {
        delete: Vec<String>,
        done: bool,
    },
    /// Deleting with `orphan`: free these dependents, then remove the `orphan` finalizer.
    Orphan {
        release: Vec<String>,
    },
}

pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// Decides about `uid`. `owner_exists(owner)` says whether an owner the graph does not hold
/// exists (the caller asks the apiserver); owners in the graph exist when their uid matches.
pub fn decide(graph: &Graph, uid: &str, owner_exists: &dyn Fn(&Node, &Owner) -> bool) -> Decision {
    let Some(node) = graph.get(uid) else {
        return Decision::Nothing;
    };
    if node.deleting && node.finalizers.iter().any(|f| f == ORPHAN) {
        return Decision::Orphan {
            release: graph.dependents_of(uid),
        };
    }
    if node.deleting && node.finalizers.iter().any(|f| f == FOREGROUND) {
        let dependents: Vec<&Node> = graph
            .dependents_of(uid)
            .iter()
            .filter_map(|d| graph.get(d))
            .collect();
        let delete = dependents
            .iter()
            .filter(|d| !d.deleting)
            .map(|d| d.uid.clone())
            .collect();
        let blocking = dependents.iter().any(|d| {
            d.owners
                .iter()
                .any(|o| o.uid == uid && o.block_owner_deletion)
        });
        return Decision::Foreground {
            delete,
            done: !blocking,
        };
    }
    if node.owners.is_empty() || node.deleting {
        return Decision::Nothing;
    }
    // Owners: alive, gone (not in the graph and not on the server, or another object under
    // the same name), or being deleted in the foreground (waiting for this one).
    let mut gone = Vec::new();
    let mut foreground = 0;
    for owner in &node.owners {
        match graph.get(&owner.uid) {
            Some(o) if o.deleting && o.finalizers.iter().any(|f| f == FOREGROUND) => {
                foreground += 1
            }
            Some(_) => {}
            None if owner_exists(node, owner) => {}
            None => gone.push(owner.uid.clone()),
        }
    }
    let alive = node.owners.len() - gone.len() - foreground;
    if alive == 0 {
        Decision::Delete {
            foreground: foreground > 0,
        }
    } else if !gone.is_empty() {
        Decision::DropOwners(gone)
    } else {
        Decision::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(uid: &str, owners: &[&str], deleting: bool, finalizers: &[&str]) -> Node {
        Node {
            uid: uid.into(),
            resource: 0,
            namespace: Some("default".into()),
            name: uid.into(),
            owners: owners
                .iter()
                .map(|o| Owner {
                    api_version: "apps/v1".into(),
                    kind: "ReplicaSet".into(),
                    name: (*o).into(),
                    uid: (*o).into(),
                    block_owner_deletion: true,
                })
                .collect(),
            deleting,
            finalizers: finalizers.iter().map(|f| (*f).into()).collect(),
        }
    }

    #[test]
    fn uids_of_picks_one_resource_s_objects() {
        let mut graph = Graph::default();
        graph.upsert(node("rs", &[], false, &[]));
        graph.upsert(node("a", &["rs"], false, &[]));
        let mut other = node("b", &["rs"], false, &[]);
        other.resource = 1;
        graph.upsert(other);
        assert_eq!(graph.uids_of(0, |_| true), ["a", "rs"]);
        assert_eq!(graph.uids_of(0, |uid| uid != "rs"), ["a"]);
        assert_eq!(graph.uids_of(1, |_| true), ["b"]);
    }

    #[test]
    fn dependents_of_a_missing_owner_are_deleted() {
        let mut graph = Graph::default();
        graph.upsert(node("pod", &["rs"], false, &[]));
        assert_eq!(
            decide(&graph, "pod", &|_, _| false),
            Decision::Delete { foreground: false }
        );
        assert_eq!(
            decide(&graph, "pod", &|_, _| true),
            Decision::Nothing,
            "the owner exists"
        );
        graph.upsert(node("rs", &[], false, &[]));
        assert_eq!(
            decide(&graph, "pod", &|_, _| false),
            Decision::Nothing,
            "in the graph"
        );
        // The owner goes: its dependents are looked at again.
        assert_eq!(graph.remove("rs"), ["pod"]);
        assert_eq!(
            decide(&graph, "pod", &|_, _| false),
            Decision::Delete { foreground: false }
        );
    }

    #[test]
    fn one_owner_gone_of_two_is_dropped() {
        let mut graph = Graph::default();
        graph.upsert(node("a", &[], false, &[]));
        graph.upsert(node("pod", &["a", "b"], false, &[]));
        assert_eq!(
            decide(&graph, "pod", &|_, _| false),
            Decision::DropOwners(vec!["b".into()])
        );
    }

    #[test]
    fn foreground_deletion_deletes_dependents_then_finishes() {
        let mut graph = Graph::default();
        let look = graph.upsert(node("rs", &[], true, &[FOREGROUND]));
        assert_eq!(look, ["rs"]);
        graph.upsert(node("pod", &["rs"], false, &[]));
        assert_eq!(
            decide(&graph, "rs", &|_, _| true),
            Decision::Foreground {
                delete: vec!["pod".into()],
                done: false
            }
        );
        assert_eq!(
            decide(&graph, "pod", &|_, _| true),
            Decision::Delete { foreground: true }
        );
        assert_eq!(graph.remove("pod"), ["rs"]);
        assert_eq!(
            decide(&graph, "rs", &|_, _| true),
            Decision::Foreground {
                delete: vec![],
                done: true
            }
        );
    }

    #[test]
    fn orphan_deletion_releases_dependents() {
        let mut graph = Graph::default();
        graph.upsert(node("pod", &["rs"], false, &[]));
        let look = graph.upsert(node("rs", &[], true, &[ORPHAN]));
        assert_eq!(look, ["rs", "pod"]);
        assert_eq!(
            decide(&graph, "rs", &|_, _| true),
            Decision::Orphan {
                release: vec!["pod".into()]
            }
        );
    }
}
