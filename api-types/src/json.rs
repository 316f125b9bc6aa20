//! Reading into `serde_json::Value`s by JSON pointer without allocating.

use serde_json::Value;

/// [`Value::pointer`] without its allocations. serde_json unescapes every token of the
/// pointer into two new `String`s (`~1` → `/`, then `~0` → `~`) even when it has nothing to
/// unescape; the apiserver reads a dozen pointers of each object it writes, on every write.
/// Same results: `at` borrows tokens that have no `~`, and indexes arrays as serde_json does.
pub trait At {
    /// The value at `pointer` (RFC 6901, e.g. `/metadata/labels`), if there is one.
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl At for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let tokens = pointer.strip_prefix('/')?;
        tokens.split('/').try_fold(self, |target, token| {
            let unescaped;
            let token = if token.contains('~') {
                unescaped = token.replace("~1", "/").replace("~0", "~");
                unescaped.as_str()
            } else {
                token
            };
            match target {
                Value::Object(map) => map.get(token),
                Value::Array(list) => index(token).and_then(|i| list.get(i)),
                _ => None,
            }
        })
    }
}

/// An array index as serde_json reads one: digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_what_serde_json_pointer_finds() {
        let value = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "a/b": "slash", "m~n": "tilde"}},
            "status": {"podIPs": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]},
            "": {"": "empty keys"},
            "10": "a key that looks like an index",
        });
        for pointer in [
            "",
            "/",
            "//",
            "/metadata",
            "/metadata/name",
            "/metadata/labels/app",
            "/metadata/labels/a~1b",
            "/metadata/labels/m~0n",
            "/metadata/labels/a/b",
            "/metadata/missing",
            "/metadata/name/deeper",
            "/status/podIPs/0/ip",
            "/status/podIPs/1/ip",
            "/status/podIPs/2/ip",
            "/status/podIPs/01/ip",
            "/status/podIPs/+1/ip",
            "/status/podIPs/-1",
            "/status/podIPs/x",
            "/10",
            "metadata/name",
        ] {
            assert_eq!(
                value.at(pointer),
                value.pointer(pointer),
                "pointer {pointer:?}"
            );
        }
        assert_eq!(value.at("/status/podIPs/1/ip"), Some(&json!("10.0.0.2")));
        assert_eq!(value.at("/metadata/labels/a~1b"), Some(&json!("slash")));
    }
}
