//! URLs as config errors show them: `scheme://host[:port]/…` at most. A
//! URL's userinfo, path and query can be its secret (a password, the token
//! of a Slack-style hook), and config errors reach the log and the terminal.

/// `raw` without its userinfo, path, query and fragment; `/…` says that
/// something was left out.
pub fn shown_url(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return "(not shown: it has no scheme://)".into();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let more = if rest[end..].is_empty() || &rest[end..] == "/" {
        "/"
    } else {
        "/…"
    };
    format!("{scheme}://{host}{more}")
}

/// `text` with every URL in it as `shown_url` shows it: a TOML error
/// quotes the line it is about, whatever that line holds.
pub fn scrub(text: &str) -> String {
    match regex_lite::Regex::new(r#"[A-Za-z][A-Za-z0-9+.-]*://[^\s"'`<>]+"#) {
        Ok(re) => re
            .replace_all(text, |c: &regex_lite::Captures| shown_url(&c[0]))
            .into_owned(),
        // A fixed pattern; should it ever fail, say nothing rather than leak.
        Err(_) => "(the message is not shown: it may hold a secret)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_userinfo_path_or_query() {
        for (raw, shown) in [
            (
                "https://u:s3cret@hooks.example.com/T0/s3cret?k=s3cret",
                "https://hooks.example.com/…",
            ),
            ("http://127.0.0.1:9000/", "http://127.0.0.1:9000/"),
            ("http://[::1]:80?token=s3cret", "http://[::1]:80/…"),
            ("http://h", "http://h/"),
        ] {
            assert_eq!(shown_url(raw), shown, "{raw}");
        }
        assert!(!shown_url("hooks.example.com/s3cret").contains("s3cret"));
    }

    #[test]
    fn every_url_in_a_message_is_scrubbed() {
        let m = scrub("3 | url = [\"https://u:s3cret@h:8443/x?k=s3cret\"]\nexpected a string");
        assert_eq!(m, "3 | url = [\"https://h:8443/…\"]\nexpected a string");
        assert_eq!(scrub("use http:// or https://"), "use http:// or https://");
    }
}
