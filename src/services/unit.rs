//! What may name a systemd unit or an init script. The name goes into the
//! argv of commands run as root: one that starts with `-` would be read as
//! an option, and one with `/` or `..` would run a file outside
//! /etc/init.d. Checked when the config is read.

/// systemd's limit for a whole unit name (`UNIT_NAME_MAX` less the NUL);
/// the agent adds `.service`.
const UNIT_NAME_MAX: usize = 255;
const SUFFIX: &str = ".service";

/// Checks a `unit` key. `auto` may use it as a systemd unit or as an init
/// script, so one rule serves both: systemd's unit characters (ASCII
/// letters, digits, `:-_.\@`), which never include `/`, not starting with
/// `-`, and not `.` or `..`. LSB init script names stay within these.
pub fn validate(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
    let max = UNIT_NAME_MAX - SUFFIX.len();
    let why = if name.is_empty() || name.len() > max {
        format!("use 1 to {max} characters (systemd's limit, with `{SUFFIX}` added)")
    } else if let Some(c) = name.chars().find(|c| !allowed(*c)) {
        format!(
            "{c:?} is not allowed: use ASCII letters, digits and `:-_.\\@`, as systemd unit names do"
        )
    } else if name.starts_with('-') {
        "a name starting with `-` would be read as an option of systemctl or service".into()
    } else if name == "." || name == ".." {
        "`.` and `..` name directories, not init scripts".into()
    } else {
        return Ok(());
    };
    Err(format!("unit '{name}': {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_and_template_names_are_accepted() {
        for ok in [
            "apache2",
            "getty@tty1",
            "foo\\x2dbar",
            "a:b",
            "x.y_z-1",
            ".hidden",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        assert_eq!(validate(&"a".repeat(247)), Ok(()));
    }

    #[test]
    fn options_paths_and_shell_characters_are_rejected() {
        for bad in [
            "-x",
            "--force",
            "../../bin/sh",
            "a/b",
            ".",
            "..",
            "",
            "a b",
            "x;y",
            "été",
            &"a".repeat(248),
        ] {
            let e = validate(bad).unwrap_err();
            assert!(e.starts_with("unit '"), "{bad}: {e}");
        }
    }
}
