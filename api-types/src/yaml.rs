//! YAML to JSON values, for manifests (`kubectl apply -f`-style multi-document files) and YAML
//! request bodies.
//!
//! Parsing is done by `serde-saphyr`, which does not panic on malformed input and bounds alias
//! expansion. Documents are separated by `---`; empty documents and documents that are just
//! `null` are skipped, as kubectl skips them. Mapping keys that are not strings (`1: a`,
//! `true: b`) become strings, as in Kubernetes' YAML-to-JSON conversion; duplicate keys are an
//! error.

use serde_json::Value;

/// Why YAML could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    /// The YAML is malformed. `document` counts the documents of the stream from 1 (skipped
    /// empty documents included); `line` and `column` are 1-based positions in the whole text.
    #[error("invalid YAML in document {document}: {message}")]
    Syntax {
        document: usize,
        line: Option<u64>,
        column: Option<u64>,
        message: String,
    },
    /// [`from_yaml_document`] was given no document, or more than one.
    #[error("expected exactly one YAML document, found {0}")]
    DocumentCount(usize),
}

/// Parse a multi-document YAML stream into one JSON value per non-empty document, in order.
pub fn from_yaml_documents(text: &str) -> Result<Vec<Value>, YamlError> {
    match serde_saphyr::from_multiple::<Value>(text) {
        Ok(values) => Ok(values.into_iter().filter(|v| !v.is_null()).collect()),
        Err(err) => {
            let location = err.location();
            let line = location.as_ref().map(|l| l.line());
            let column = location.as_ref().map(|l| l.column());
            Err(YamlError::Syntax {
                document: document_at_line(text, line.unwrap_or(1)),
                line,
                column,
                message: err.without_snippet().to_string(),
            })
        }
    }
}

/// Parse YAML that must hold exactly one non-empty document (a request body, say).
pub fn from_yaml_document(text: &str) -> Result<Value, YamlError> {
    let mut values = from_yaml_documents(text)?;
    match values.len() {
        1 => Ok(values.remove(0)),
        n => Err(YamlError::DocumentCount(n)),
    }
}

/// Whether a line is a document marker (`---` or `...` followed by nothing or whitespace).
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
}

/// The 1-based number of the document that contains `line` (1-based). A `---` line starts a
/// document; so does content after a `...` end marker or at the start of the stream. Blank lines,
/// comments and directives between documents belong to the next one.
fn document_at_line(text: &str, line: u64) -> usize {
    let mut document = 0;
    let mut in_document = false;
    for (i, l) in text.lines().enumerate() {
        if i as u64 >= line {
            break;
        }
        if is_marker(l, "---") {
            document += 1;
            in_document = true;
        } else if is_marker(l, "...") {
            in_document = false;
        } else if !in_document {
            let trimmed = l.trim_start();
            let content = !trimmed.is_empty() && !trimmed.starts_with('#') && !l.starts_with('%');
            if content {
                document += 1;
                in_document = true;
            }
        }
    }
    document.max(1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DEPLOYMENT_AND_SERVICE: &str = r#"# nginx, the usual example
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx            # trailing comment
  labels: &labels
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels: *labels
    spec:
      containers:
        - name: nginx
          image: "nginx:1.27"
          args: ["-g", 'daemon off;']
          resources:
            requests: {cpu: 100m, memory: 64Mi}
---
# an empty document, skipped
---
apiVersion: v1
kind: Service
metadata:
  name: nginx
  annotations:
    description: |
      Serves nginx.
      Two lines.
    folded: >
      one
      line
spec:
  selector:
    app: nginx
  ports:
  - port: 80
    targetPort: 8080
...
"#;

    #[test]
    fn deployment_and_service() {
        let docs = from_yaml_documents(DEPLOYMENT_AND_SERVICE).unwrap();
        assert_eq!(docs.len(), 2);
        let deploy = &docs[0];
        assert_eq!(deploy["kind"], "Deployment");
        assert_eq!(deploy["metadata"]["name"], "nginx");
        assert_eq!(deploy["spec"]["replicas"], 3);
        assert_eq!(
            deploy["spec"]["selector"]["matchLabels"],
            json!({"app": "nginx"})
        );
        assert_eq!(
            deploy["spec"]["template"]["metadata"]["labels"],
            json!({"app": "nginx"})
        );
        let container = &deploy["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "nginx:1.27");
        assert_eq!(container["args"], json!(["-g", "daemon off;"]));
        assert_eq!(
            container["resources"]["requests"],
            json!({"cpu": "100m", "memory": "64Mi"})
        );
        let svc = &docs[1];
        assert_eq!(svc["kind"], "Service");
        assert_eq!(
            svc["metadata"]["annotations"]["description"],
            "Serves nginx.\nTwo lines.\n"
        );
        assert_eq!(svc["metadata"]["annotations"]["folded"], "one line\n");
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"port": 80, "targetPort": 8080}])
        );
    }

    #[test]
    fn documents_and_skipping() {
        let cases: Vec<(&str, Vec<Value>)> = vec![
            ("", vec![]),
            ("# just a comment\n", vec![]),
            ("---\n---\n", vec![]),
            ("null\n---\n~\n", vec![]),
            ("a: 1\n", vec![json!({"a": 1})]),
            ("a: 1\n---\nb: 2\n", vec![json!({"a": 1}), json!({"b": 2})]),
            (
                "--- {a: 1}\n--- [1, 2]\n",
                vec![json!({"a": 1}), json!([1, 2])],
            ),
            (
                "a: 1\n...\n---\nb: 2\n",
                vec![json!({"a": 1}), json!({"b": 2})],
            ),
            ("a:\nb: ~\n", vec![json!({"a": null, "b": null})]),
            ("1: a\ntrue: b\n", vec![json!({"1": "a", "true": "b"})]),
            (
                "s: '1'\nn: 1\nf: 1.5\nt: true\n",
                vec![json!({"s": "1", "n": 1, "f": 1.5, "t": true})],
            ),
            (
                "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n",
                vec![json!({"base": {"x": 1}, "m": {"x": 1, "y": 2}})],
            ),
            ("k: |-\n  no newline\n", vec![json!({"k": "no newline"})]),
            (
                "a: 1\r\n---\r\nb: 2\r\n",
                vec![json!({"a": 1}), json!({"b": 2})],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(from_yaml_documents(input).unwrap(), want, "{input:?}");
        }
    }

    /// Malformed input → (document, line, substring of the message).
    #[test]
    fn malformed_yaml_names_document_and_location() {
        let cases = [
            ("a: [1, 2\n", 1, 1, "unclosed bracket"),
            ("a: 1\n---\nb: [1, 2\n", 2, 3, "unclosed bracket"),
            (
                "a: 1\n---\nkind: x\n  bad: indentation\n",
                2,
                4,
                "mapping values are not allowed",
            ),
            (
                "# header\n---\na: 1\n---\n# c\nb: 1\nb: 2\n",
                2,
                7,
                "duplicate mapping key",
            ),
            ("a: 1\n---\n---\nb:\n\tc: 1\n", 3, 5, "tabs"),
            ("a: *missing\n", 1, 1, ""),
            ("a: 1\n...\nb: [\n", 2, 3, ""),
        ];
        for (input, document, line, message) in cases {
            match from_yaml_documents(input) {
                Ok(v) => panic!("{input:?} parsed as {v:?}"),
                Err(YamlError::Syntax {
                    document: d,
                    line: l,
                    message: m,
                    ..
                }) => {
                    assert_eq!(d, document, "document of {input:?}: {m}");
                    assert_eq!(l, Some(line), "line of {input:?}: {m}");
                    assert!(m.contains(message), "{m:?} should contain {message:?}");
                }
                Err(e) => panic!("{input:?}: unexpected {e}"),
            }
        }
        let err = from_yaml_documents("a: 1\n---\nb: [1, 2\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid YAML in document 2: unclosed bracket"),
            "{err}"
        );
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn alias_bombs_are_refused() {
        // 10 × 20^6 scalars if expanded; refused by serde-saphyr's alias budget instead.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..6 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            let aliases = vec![format!("*{prev}"); 20].join(", ");
            bomb.push_str(&format!("l{i}: &l{i} [{aliases}]\n"));
        }
        let err = from_yaml_documents(&bomb).unwrap_err();
        assert!(
            matches!(err, YamlError::Syntax { document: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn single_document() {
        assert_eq!(
            from_yaml_document("kind: Pod\n").unwrap(),
            json!({"kind": "Pod"})
        );
        assert_eq!(
            from_yaml_document("---\nkind: Pod\n---\n").unwrap(),
            json!({"kind": "Pod"})
        );
        assert_eq!(from_yaml_document(""), Err(YamlError::DocumentCount(0)));
        assert_eq!(
            from_yaml_document("a: 1\n---\nb: 2\n"),
            Err(YamlError::DocumentCount(2))
        );
        assert_eq!(
            from_yaml_document("a: 1\n---\nb: 2\n")
                .unwrap_err()
                .to_string(),
            "expected exactly one YAML document, found 2"
        );
        assert!(matches!(
            from_yaml_document("a: ["),
            Err(YamlError::Syntax { document: 1, .. })
        ));
    }

    #[test]
    fn document_numbering() {
        let cases = [
            ("a: 1\n", 1, 1),
            ("---\na: 1\n", 2, 1),
            ("# c\n\n---\na: 1\n", 4, 1),
            ("a: 1\n---\nb: 1\n", 3, 2),
            ("a: 1\n---\nb: 1\n", 2, 2),
            ("a: 1\n...\n# c\nb: 1\n", 4, 2),
            ("%YAML 1.2\n---\na: 1\n", 3, 1),
            ("a: 1\n----\n", 2, 1),
            ("", 1, 1),
        ];
        for (text, line, want) in cases {
            assert_eq!(document_at_line(text, line), want, "{text:?} line {line}");
        }
    }
}
