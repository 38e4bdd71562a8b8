//! Credentials never leave the process in clear: what a URL may carry that grants access is
//! replaced by `***` before the URL is shown anywhere (API answers, issues, events, the
//! status page, archived records, logs).
//!
//! - [`url`]: the userinfo (`user:password@`) and the values of query parameters whose name
//!   looks secret (token, key, password, secret, sig, auth, …). For URLs that are shown but
//!   whose path is ordinary: probe targets, peers.
//! - [`origin`]: only `scheme://host[:port]`. For webhook URLs, whose path is often the
//!   secret itself (`https://hooks.slack.com/services/T/B/<secret>`).
//! - [`text`]: free text someone else wrote (a container's log lines, an event's message):
//!   every URL in it as [`url`] shows it, the values of `name=value` / `name: value` pairs
//!   whose name is a credential's, and the word after `Bearer` / `Basic`.
//! - [`reqwest_error`]: a reqwest error with its URL passed through [`url`]. reqwest's text
//!   names the URL it failed on (`error sending request for url (http://user:pw@…)`), so every
//!   error of a request to a peer goes through it before it is logged or kept.

/// Shown in place of a secret.
pub const MASK: &str = "***";

/// Query parameter names (lowercase) that are secret when they contain one of these.
const SECRET_PARAMETER_PARTS: &[&str] = &[
    "token",
    "key",
    "pass",
    "pwd",
    "secret",
    "sig",
    "auth",
    "credential",
    "session",
    "cookie",
    "jwt",
    "code",
];

fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETER_PARTS
        .iter()
        .any(|part| name.contains(part))
}

/// `raw` with its userinfo and secret-looking query values replaced by `***`. Text that is
/// not an absolute URL is returned with anything up to an `@` before the first `/` masked,
/// so that a malformed URL with credentials does not slip through either.
pub fn url(raw: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(raw) else {
        return mask_unparsed(raw);
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        // Setting the userinfo fails only for URLs that cannot have one (no host): those
        // cannot carry credentials in it either.
        let _ = parsed.set_password(None);
        let _ = parsed.set_username(MASK);
    }
    let secret_query = parsed
        .query_pairs()
        .any(|(name, value)| is_secret_parameter(&name) && !value.is_empty());
    if secret_query {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_secret_parameter(&name) && !value.is_empty() {
                    MASK.to_string()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // The URL serializer percent-encodes the mask in the userinfo; it reads better plain.
    parsed.to_string().replacen("%2A%2A%2A@", "***@", 1)
}

/// Only `scheme://host[:port]` of `raw` (and `/…` when anything followed): for URLs whose
/// path may be the secret.
pub fn origin(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(parsed) if parsed.has_host() => {
            let origin = parsed.origin().ascii_serialization();
            let rest = parsed.path() != "/" || parsed.query().is_some();
            if rest {
                format!("{origin}/…")
            } else {
                origin
            }
        }
        _ => mask_unparsed(raw),
    }
}

/// Names (lowercase) of `name=value` pairs in free text whose value is masked. Stricter than
/// the query-parameter list: text is full of `exit_code=1` and `statuscode: 503`.
const SECRET_NAME_PARTS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "api-key",
    "access_key",
    "private_key",
    "credential",
    "authorization",
    "cookie",
    "jwt",
];
const SECRET_NAMES: &[&str] = &["auth", "key", "sig", "signature", "session"];

fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES.contains(&name.as_str()) || SECRET_NAME_PARTS.iter().any(|p| name.contains(p))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Where a value that follows a secret name ends: at white space or a separator, or at its
/// closing quote when quoted.
fn value_end(rest: &str) -> (usize, usize) {
    if let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let body = &rest[1..];
        let end = body.find(quote).unwrap_or(body.len());
        return (1, 1 + end);
    }
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '&' | ',' | ';' | '"' | '\'' | '}' | ')'))
        .unwrap_or(rest.len());
    (0, end)
}

/// `raw` (free text: log lines, messages) with what looks like a credential masked: URLs as
/// [`url`] shows them, values of secret-named pairs (`password=…`, `"token": "…"`,
/// `API_KEY: …`), and the credential after `Bearer` or `Basic`. A heuristic: it masks what is
/// written the usual ways, not a secret printed bare.
pub fn text(raw: &str) -> String {
    // URLs first, each as `url` shows it.
    let mut with_urls = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find("://") {
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
            .map_or(0, |i| i + 1);
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(rest.len(), |e| at + e);
        with_urls.push_str(&rest[..start]);
        if start < at {
            with_urls.push_str(&url(&rest[start..end]));
        } else {
            with_urls.push_str(&rest[start..end]);
        }
        rest = &rest[end..];
    }
    with_urls.push_str(rest);
    // Then secret-named pairs and authorization schemes.
    let source = with_urls;
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < source.len() {
        let Some(c) = source[i..].chars().next() else {
            break;
        };
        if !is_name_char(c) || (i > 0 && source[..i].ends_with(is_name_char)) {
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let name_end = source[i..]
            .find(|c: char| !is_name_char(c))
            .map_or(source.len(), |e| i + e);
        let name = &source[i..name_end];
        out.push_str(name);
        i = name_end;
        let after = &source[i..];
        // `name=`, `name:`, `name":` (JSON), each with spaces allowed after the separator.
        let separator = after
            .strip_prefix("\":")
            .map(|r| after.len() - r.len())
            .or_else(|| {
                after
                    .strip_prefix(['=', ':'])
                    .map(|r| after.len() - r.len())
            });
        let scheme = matches!(name.to_ascii_lowercase().as_str(), "bearer" | "basic")
            && after.starts_with(' ');
        if let Some(separator) = separator.filter(|_| is_secret_name(name)) {
            let spaces = after[separator..].len() - after[separator..].trim_start().len();
            let value = &after[separator + spaces..];
            let (open, end) = value_end(value);
            // `Authorization: Bearer x`: the scheme's own rule masks the credential.
            let word = value[open..end].to_ascii_lowercase();
            let names_scheme = (word == "bearer" || word == "basic") && open == 0;
            if end > open && !value[open..end].starts_with(MASK) && !names_scheme {
                out.push_str(&after[..separator + spaces + open]);
                out.push_str(MASK);
                i += separator + spaces + end;
            }
        } else if scheme {
            let value = &after[1..];
            let end = value.find(char::is_whitespace).unwrap_or(value.len());
            if end > 0 {
                out.push(' ');
                out.push_str(MASK);
                i += 1 + end;
            }
        }
    }
    out
}

/// `error` with the URL it names redacted by [`url`]; its kind and cause are kept, so
/// `is_connect()`/`is_timeout()` and the `{:#}` chain still read the same.
pub fn reqwest_error(mut error: reqwest::Error) -> reqwest::Error {
    let shown = error
        .url()
        .and_then(|named| reqwest::Url::parse(&url(named.as_str())).ok());
    match shown {
        Some(shown) => {
            if let Some(named) = error.url_mut() {
                *named = shown;
            }
            error
        }
        // No URL, or the redacted one would not parse again: better none than the secret.
        None => error.without_url(),
    }
}

fn mask_unparsed(raw: &str) -> String {
    let authority_end = raw.find("://").map(|scheme| scheme + 3).map(|start| {
        (
            start,
            raw[start..].find('/').map_or(raw.len(), |end| start + end),
        )
    });
    match authority_end {
        Some((start, end)) => match raw[start..end].rfind('@') {
            Some(at) => format!("{}{MASK}{}", &raw[..start], &raw[start + at..]),
            None => raw.to_string(),
        },
        None => raw.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_secret_query_values_are_masked() {
        assert_eq!(
            url("http://admin:pw@db:8080/health?apikey=abc&verbose=1"),
            "http://***@db:8080/health?apikey=***&verbose=1"
        );
        // A token as the user name is a credential too.
        assert_eq!(
            url("https://ghp_secret@git.example/x"),
            "https://***@git.example/x"
        );
        for name in [
            "token",
            "access_token",
            "X-Amz-Signature",
            "password",
            "client_secret",
        ] {
            let shown = url(&format!("https://h/p?{name}=s3cr3t"));
            assert!(!shown.contains("s3cr3t"), "{name}: {shown}");
        }
    }

    #[test]
    fn ordinary_urls_are_unchanged() {
        for plain in [
            "http://127.0.0.1:8001/healthz",
            "https://example.com/status?verbose=1&page=2",
        ] {
            assert_eq!(url(plain), plain);
        }
    }

    #[test]
    fn unparsable_text_with_credentials_is_masked_too() {
        assert_eq!(url("http://admin:pw@[bad/x"), "http://***@[bad/x");
        assert_eq!(url("not a url"), "not a url");
    }

    #[tokio::test]
    async fn reqwest_errors_name_their_url_redacted() {
        // A closed port: the connection fails, and reqwest's text names the URL.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        let raw = format!("http://user:hunter2@127.0.0.1:{port}/x?token=hunter2&page=2");
        let error = reqwest::Client::new().get(&raw).send().await.unwrap_err();
        assert!(
            format!("{error}").contains("hunter2"),
            "reqwest names the URL: {error}"
        );
        let error = reqwest_error(error);
        assert!(error.is_connect());
        let shown = format!("{error} {error:?}");
        let text = format!("{shown} {:#}", anyhow::Error::new(error));
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("page=2"), "{text}");
    }

    #[test]
    fn text_masks_urls_pairs_and_authorization_schemes() {
        let line = "Get \"http://10.0.0.5:8080/health?token=abc123\": dial tcp: refused";
        assert_eq!(
            text(line),
            "Get \"http://10.0.0.5:8080/health?token=***\": dial tcp: refused"
        );
        for (raw, secret) in [
            (
                "connecting to postgres://app:hunter2@db:5432/app",
                "hunter2",
            ),
            ("PASSWORD=hunter2 started", "hunter2"),
            ("{\"api_key\": \"sk-live-123\", \"n\": 1}", "sk-live-123"),
            ("client_secret: s3cr3t", "s3cr3t"),
            ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi"),
            ("db_password='a b c' then", "a b c"),
        ] {
            let shown = text(raw);
            assert!(!shown.contains(secret), "{raw} -> {shown}");
            assert!(shown.contains(MASK), "{raw} -> {shown}");
        }
        for plain in [
            "exit_code=1 statuscode: 503",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "panic: keyboard interrupt; monkey=1",
            "",
            "héllo wörld: ünïcode=1",
        ] {
            assert_eq!(text(plain), plain);
        }
    }

    #[test]
    fn origin_hides_the_path() {
        assert_eq!(
            origin("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            origin("http://user:pw@receiver:9000"),
            "http://receiver:9000"
        );
        assert!(!origin("http://user:pw@[bad/x").contains("pw"));
    }
}
