//! What the embedded-store crash test and its writer process (`embedded-crash-writer`) agree on:
//! the keys, the values, and the acknowledgement lines the writer prints.

/// Every key the writer touches is under this prefix.
pub const PREFIX: &str = "/registry/crash/";
/// Objects the writer creates, `<OBJECTS><run>-<task>-<i>`, each exactly once.
pub const OBJECTS: &str = "/registry/crash/objects/";
/// One counter per writer task, `<COUNTERS><task>`, incremented by `guaranteed_update`.
pub const COUNTERS: &str = "/registry/crash/counters/";

/// The value the writer stores under an object key: derived from the key alone, so the checker
/// knows what every acknowledged object must hold. About 300 bytes.
pub fn object_value(key: &str) -> Vec<u8> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let pad: String = name.chars().cycle().take(256).collect();
    format!(r#"{{"metadata":{{"name":"{name}","uid":"uid-{name}"}},"pad":"{pad}"}}"#).into_bytes()
}

/// The value of a counter key holding `n`.
pub fn counter_value(n: i64) -> Vec<u8> {
    format!(r#"{{"metadata":{{"name":"counter"}},"data":{n}}}"#).into_bytes()
}

/// The number in a counter value, `None` if it is not one.
pub fn parse_counter(value: &[u8]) -> Option<i64> {
    serde_json::from_slice::<serde_json::Value>(value)
        .ok()?
        .get("data")?
        .as_i64()
}

/// One acknowledged write, as the writer prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ack {
    /// `ACK create <key> <rev>`: `key` was created at revision `rev`.
    Create { key: String, rev: i64 },
    /// `ACK counter <key> <value> <rev>`: the counter `key` holds `value` since revision `rev`.
    Counter { key: String, value: i64, rev: i64 },
}

impl Ack {
    /// The line the writer prints, without the newline.
    pub fn to_line(&self) -> String {
        match self {
            Ack::Create { key, rev } => format!("ACK create {key} {rev}"),
            Ack::Counter { key, value, rev } => format!("ACK counter {key} {value} {rev}"),
        }
    }

    /// Parses a line printed by [`Ack::to_line`] (without its newline).
    pub fn parse(line: &str) -> Option<Ack> {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["ACK", "create", key, rev] => Some(Ack::Create {
                key: (*key).to_owned(),
                rev: rev.parse().ok()?,
            }),
            ["ACK", "counter", key, value, rev] => Some(Ack::Counter {
                key: (*key).to_owned(),
                value: value.parse().ok()?,
                rev: rev.parse().ok()?,
            }),
            _ => None,
        }
    }

    pub fn rev(&self) -> i64 {
        match self {
            Ack::Create { rev, .. } | Ack::Counter { rev, .. } => *rev,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_lines_round_trip() {
        for ack in [
            Ack::Create {
                key: format!("{OBJECTS}1-03-000007"),
                rev: 42,
            },
            Ack::Counter {
                key: format!("{COUNTERS}03"),
                value: 9,
                rev: 43,
            },
        ] {
            assert_eq!(Ack::parse(&ack.to_line()), Some(ack));
        }
        assert_eq!(Ack::parse("ACK create"), None);
        assert_eq!(Ack::parse("ACK counter k x 3"), None);
    }

    #[test]
    fn values_are_json_with_the_expected_fields() {
        let v: serde_json::Value =
            serde_json::from_slice(&object_value("/registry/crash/objects/1-2-3")).unwrap();
        assert_eq!(v["metadata"]["name"], "1-2-3");
        assert_eq!(parse_counter(&counter_value(17)), Some(17));
        assert_eq!(parse_counter(b"{}"), None);
    }
}
