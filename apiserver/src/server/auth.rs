//! Authentication: bearer tokens from kube-apiserver's `--token-auth-file` CSV.
//!
//! Each line is `token,user,uid,"group1,group2"` (groups optional). Authorization and admission
//! are not built yet: every authenticated user may do everything (see ARCHITECTURE.md).

use std::collections::HashMap;
use std::path::Path;

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// The known tokens.
#[derive(Clone, Debug, Default)]
pub struct TokenAuth {
    tokens: HashMap<String, UserInfo>,
}

/// A malformed token file.
#[derive(Debug, thiserror::Error)]
#[error("token file {path}, line {line}: {message}")]
pub struct TokenFileError {
    pub path: String,
    pub line: usize,
    pub message: String,
}

impl TokenAuth {
    /// Parses a token file's contents.
    pub fn parse(path: &str, text: &str) -> Result<TokenAuth, TokenFileError> {
        let mut tokens = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: &str| TokenFileError {
                path: path.to_owned(),
                line: index + 1,
                message: message.to_owned(),
            };
            let fields = split_csv(line).ok_or_else(|| error("unterminated quote"))?;
            if fields.len() < 3 {
                return Err(error("expected at least 3 fields: token,user,uid"));
            }
            if fields[0].is_empty() || fields[1].is_empty() {
                return Err(error("the token and the user name may not be empty"));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let user = UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
            };
            if tokens.insert(fields[0].clone(), user).is_some() {
                return Err(error("duplicate token"));
            }
        }
        Ok(TokenAuth { tokens })
    }

    /// Reads a token file.
    pub fn load(path: &Path) -> Result<TokenAuth, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| TokenFileError {
            path: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        TokenAuth::parse(&path.display().to_string(), &text)
    }

    /// One token for one user (tests, `ferry up`).
    pub fn single(token: &str, user: &str, groups: &[&str]) -> TokenAuth {
        let user = UserInfo {
            name: user.to_owned(),
            uid: user.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        };
        TokenAuth {
            tokens: HashMap::from([(token.to_owned(), user)]),
        }
    }

    /// The user behind an `Authorization` header value, if it is a known bearer token.
    pub fn authenticate(&self, authorization: Option<&str>) -> Option<&UserInfo> {
        let value = authorization?.trim();
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.tokens.get(token.trim())
    }
}

/// Splits one CSV line (double quotes group commas; `""` is a quote).
fn split_csv(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut()?.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut()?.push(c),
        }
    }
    (!quoted).then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines_parse_like_kube_apiserver() {
        let auth = TokenAuth::parse(
            "t.csv",
            "# admins\nsecret,admin,1,\"system:masters,devs\"\nother,bob,2\n",
        )
        .unwrap();
        let admin = auth.authenticate(Some("Bearer secret")).unwrap();
        assert_eq!(admin.name, "admin");
        assert_eq!(admin.groups, vec!["system:masters", "devs"]);
        assert_eq!(auth.authenticate(Some("bearer other")).unwrap().name, "bob");
        assert!(auth.authenticate(Some("Bearer nope")).is_none());
        assert!(auth.authenticate(Some("Basic secret")).is_none());
        assert!(auth.authenticate(None).is_none());
    }

    #[test]
    fn malformed_token_files_are_rejected() {
        for (text, why) in [
            ("a,b", "at least 3"),
            ("a,b,1,\"x", "quote"),
            (",b,1", "empty"),
            ("a,b,1\na,c,2", "duplicate"),
        ] {
            let err = TokenAuth::parse("t.csv", text).unwrap_err();
            assert!(err.to_string().contains(why), "{text}: {err}");
        }
    }
}
