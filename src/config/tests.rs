use super::*;

fn parse(text: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    Settings::parse(text, std::path::Path::new("t.toml"), env)
}

#[test]
fn no_file_gives_the_spec_defaults() {
    let s = parse("", &[]).unwrap();
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.storage.path, PathBuf::from("hostwatch.db"));
    assert_eq!(s.sampler.interval, Duration::from_secs(60));
    assert!(s.sampler.autostart);
    assert_eq!(s.sampler.top_processes, 5);
    assert!(s.auth.public_read);
    assert_eq!(s.services.len(), 1);
    assert_eq!(s.services[0].name, "httpd");
    assert_eq!(s.storage.retention, Duration::from_secs(30 * 86_400));
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let e = parse("[server]\nlisten = \"127.0.0.1:1\"\nlisten_on = 3\n", &[]).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("listen_on") && m.contains("line 3"), "{m}");
}

#[test]
fn a_bad_duration_is_named_with_its_line() {
    let e = parse("[sampler]\n\ninterval = \"often\"\n", &[]).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("line 3") && m.contains("often"), "{m}");
}

#[test]
fn an_interval_below_ten_milliseconds_is_rejected() {
    assert!(parse("[sampler]\ninterval = \"1ms\"\n", &[]).is_err());
    assert!(parse("[sampler]\ninterval = \"200ms\"\n", &[]).is_ok());
}

#[test]
fn environment_variables_override_the_file() {
    let s = parse(
        "[server]\nworkers = 3\n",
        &[
            ("HOSTWATCH_SERVER__WORKERS", "5"),
            ("HOSTWATCH_STORAGE__PATH", "/tmp/x.db"),
            ("HOSTWATCH_AUTH__PUBLIC_READ", "false"),
            ("HOSTWATCH_CONTROL__SPAWN_ALLOW", "[\"/bin/echo\"]"),
            ("HOSTWATCH_CONFIG", "ignored.toml"),
        ],
    )
    .unwrap();
    assert_eq!(s.server.workers, 5);
    assert_eq!(s.storage.path, PathBuf::from("/tmp/x.db"));
    assert!(!s.auth.public_read);
    assert_eq!(s.control.spawn_allow, vec!["/bin/echo".to_string()]);
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    let e = parse("", &[("HOSTWATCH_SERVER__LISTEN", "nowhere")]).unwrap_err();
    assert!(e.to_string().contains("HOSTWATCH_SERVER__LISTEN"), "{e}");
    let e = parse("", &[("HOSTWATCH_SAMPLER__EVERY", "5s")]).unwrap_err();
    assert!(e.to_string().contains("every"), "{e}");
}

#[test]
fn a_token_hash_must_be_64_hex_digits() {
    let t = "[[auth.tokens]]\nname = \"ops\"\nscope = \"control\"\nsha256 = \"abc\"\n";
    let m = parse(t, &[]).unwrap_err().to_string();
    assert!(m.contains("64 hex") && m.contains("line 4"), "{m}");
}

#[test]
fn a_token_cannot_be_named_like_callers_without_one() {
    let hash = "0".repeat(64);
    for bad in ["anonymous", " anonymous ", ""] {
        let t =
            format!("[[auth.tokens]]\nname = \"{bad}\"\nscope = \"read\"\nsha256 = \"{hash}\"\n");
        let m = parse(&t, &[]).unwrap_err().to_string();
        assert!(m.contains("line 2") && m.contains("name"), "{m}");
    }
}

#[test]
fn services_take_their_manager_and_timeout() {
    let s = parse(
        "[[services]]\nname = \"web\"\nmanager = \"sysv\"\nunit = \"apache2\"\ntimeout = \"3s\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.services[0].manager, Manager::Sysv);
    assert_eq!(s.services[0].timeout, Duration::from_secs(3));
}

#[test]
fn a_service_name_with_path_or_shell_characters_is_rejected() {
    for bad in ["../etc", "a b", "x;rm", "", ".", "..", "..."] {
        let t = format!("[[services]]\nname = \"{bad}\"\n");
        let m = parse(&t, &[]).unwrap_err().to_string();
        assert!(m.contains("service name") && m.contains("line 2"), "{m}");
    }
}

#[test]
fn a_service_name_that_would_be_an_option_is_rejected() {
    for bad in ["-x", "--force"] {
        let t = format!("[[services]]\nname = \"{bad}\"\n");
        let m = parse(&t, &[]).unwrap_err().to_string();
        assert!(
            m.contains("not starting with '-'") && m.contains("line 2"),
            "{m}"
        );
    }
}

#[test]
fn a_unit_that_would_be_an_option_or_leave_init_d_is_rejected_naming_key_and_line() {
    for manager in ["auto", "systemd", "sysv"] {
        for bad in [
            "-H",
            "--root=/tmp",
            "../../tmp/x",
            "a/b",
            "..",
            ".",
            "a b",
            "",
        ] {
            let t = format!(
                "[[services]]\nname = \"web\"\nmanager = \"{manager}\"\nunit = \"{bad}\"\n"
            );
            let m = parse(&t, &[]).unwrap_err().to_string();
            assert!(
                m.contains(&format!("unit '{bad}'"))
                    && m.contains("line 4")
                    && m.contains("t.toml"),
                "{manager} {bad}: {m}"
            );
        }
    }
    let t = "[[services]]\nname = \"tty\"\nmanager = \"systemd\"\nunit = \"getty@tty1\"\n";
    assert_eq!(
        parse(t, &[]).unwrap().services[0].unit.as_deref(),
        Some("getty@tty1")
    );
}

#[test]
fn a_service_listed_twice_is_rejected() {
    let m = parse(
        "[[services]]\nname = \"a\"\n[[services]]\nname = \"a\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(m.contains("twice"), "{m}");
}

#[test]
fn a_health_url_must_be_plain_http() {
    let m = parse(
        "[[services]]\nname = \"a\"\nhealth_url = \"https://x/\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(m.contains("only http") && m.contains("line 3"), "{m}");
}

#[test]
fn spawn_env_takes_a_table_of_strings_from_the_file_or_the_environment() {
    let s = parse(
        "[control]\nspawn_env = { TZ = \"UTC\", _X1 = \"a=b\" }\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        s.control.spawn_env.get("TZ").map(String::as_str),
        Some("UTC")
    );
    assert_eq!(
        s.control.spawn_env.get("_X1").map(String::as_str),
        Some("a=b")
    );
    assert!(parse("", &[]).unwrap().control.spawn_env.is_empty());
    let s = parse("", &[("HOSTWATCH_CONTROL__SPAWN_ENV", "{ TZ = \"UTC\" }")]).unwrap();
    assert_eq!(s.control.spawn_env.len(), 1);
}

#[test]
fn a_spawn_env_name_that_is_no_variable_name_is_rejected_with_its_line() {
    for bad in [
        "\"A=B\"",
        "\"1X\"",
        "\"A B\"",
        "\"\"",
        "\"A\\u0000\"",
        "\"ÉTÉ\"",
    ] {
        let t = format!("[control]\n\nspawn_env = {{ {bad} = \"v\" }}\n");
        let m = parse(&t, &[]).unwrap_err().to_string();
        assert!(
            m.contains("spawn_env") && m.contains("line 3"),
            "{bad}: {m}"
        );
    }
}

#[test]
fn a_spawn_env_value_with_nul_or_not_a_string_is_rejected() {
    let m = parse("[control]\nspawn_env = { TZ = \"U\\u0000\" }\n", &[])
        .unwrap_err()
        .to_string();
    assert!(m.contains("spawn_env.TZ") && m.contains("NUL"), "{m}");
    assert!(parse("[control]\nspawn_env = { TZ = 1 }\n", &[]).is_err());
}

const WATCHDOG: &str = r#"
[watchdog]
interval = "100ms"

[[notifiers]]
name = "ops"
kind = "smtp"
host = "mail.example.com"
port = 2525
tls = "starttls"
username = "alerts"
password_file = "/etc/hostwatch/smtp.pass"
from = "hostwatch@example.com"
to = ["ops@example.com"]

[[notifiers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9000/alerts"

[[probes]]
name = "frontoffice"
kind = "http"
url = "http://127.0.0.1:8081/session"
interval = "200ms"
timeout = "100ms"
window = "10s"

[[rules]]
name = "runaway-worker"
metric = "process.cpu_percent"
process = "worker"
above = 20
for = "0s"
notify = ["ops", "hook"]
[[rules.actions]]
kind = "kill"
signal = "TERM"
grace = "2s"

[[rules]]
name = "frontoffice-slow"
metric = "probe.latency_ratio"
probe = "frontoffice"
above = 10
notify = ["ops"]
[[rules.actions]]
kind = "kill"
process = "worker"
"#;

#[test]
fn the_spec_watchdog_example_parses() {
    let s = parse(WATCHDOG, &[]).unwrap();
    assert_eq!(s.watchdog.interval, Duration::from_millis(100));
    assert_eq!(s.notifiers.len(), 2);
    assert_eq!(
        s.rules[0].get_ref().actions[0].get_ref().grace,
        Duration::from_secs(2)
    );
    assert_eq!(s.probes[0].get_ref().window, Duration::from_secs(10));
}

fn watchdog_error(edit: (&str, &str)) -> String {
    let text = WATCHDOG.replacen(edit.0, edit.1, 1);
    assert_ne!(text, WATCHDOG, "the edit {edit:?} changed nothing");
    parse(&text, &[]).unwrap_err().to_string()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn a_rule_naming_an_unknown_notifier_is_named_with_its_line() {
    let text = WATCHDOG.replacen(
        r#"notify = ["ops", "hook"]"#,
        r#"notify = ["ops", "pager"]"#,
        1,
    );
    let m = parse(&text, &[]).unwrap_err().to_string();
    let line = line_of(&text, "\"pager\"");
    assert!(
        m.contains("'pager'") && m.contains(&format!("line {line}")),
        "{m}"
    );
}

#[test]
fn watchdog_config_mistakes_stop_start_up_with_the_key() {
    for (edit, expect) in [
        (
            ("probe = \"frontoffice\"", "probe = \"backoffice\""),
            "probe 'backoffice'",
        ),
        (
            (
                "metric = \"process.cpu_percent\"",
                "metric = \"process.cpu\"",
            ),
            "process.cpu",
        ),
        (("above = 10", "above = 10\nbelow = 2"), "not both"),
        (
            (
                "process = \"worker\"\nabove",
                "process_cmdline = \"wor(ker\"\nabove",
            ),
            "regex",
        ),
        (
            ("probe = \"frontoffice\"", "service = \"nginx\""),
            "service",
        ),
        (
            (
                "kind = \"webhook\"\n",
                "kind = \"webhook\"\nfrom = \"x@y\"\n",
            ),
            "smtp keys",
        ),
        (("interval = \"100ms\"", "interval = \"50ms\""), "100ms"),
        (("name = \"hook\"", "name = \"ops\""), "given twice"),
    ] {
        let m = watchdog_error(edit);
        assert!(m.contains(expect) && m.contains("line "), "{edit:?}: {m}");
    }
}

#[test]
fn a_bad_regex_is_reported_on_its_own_line() {
    let text = WATCHDOG.replacen(
        "process = \"worker\"\nabove",
        "process_cmdline = \"wor(ker\"\nabove",
        1,
    );
    let m = parse(&text, &[]).unwrap_err().to_string();
    let line = line_of(&text, "wor(ker");
    assert!(m.contains(&format!("line {line}")), "{m}");
}

#[test]
fn environment_overrides_keep_the_watchdog_sections() {
    let s = parse(WATCHDOG, &[("HOSTWATCH_WATCHDOG__INTERVAL", "250ms")]).unwrap();
    assert_eq!(s.watchdog.interval, Duration::from_millis(250));
    assert_eq!(s.rules.len(), 2);
}

#[test]
fn a_login_in_the_clear_to_another_host_and_reminders_every_tick_are_refused() {
    let m = watchdog_error(("tls = \"starttls\"\nusername", "tls = \"none\"\nusername"));
    assert!(m.contains("in the clear"), "{m}");
    let local = WATCHDOG
        .replacen(
            "tls = \"starttls\"\nusername",
            "tls = \"none\"\nusername",
            1,
        )
        .replacen("mail.example.com", "127.0.0.1", 1);
    assert!(parse(&local, &[]).is_ok(), "a login to loopback is allowed");
    let m = watchdog_error((
        "interval = \"100ms\"",
        "interval = \"100ms\"\nrepeat_interval = \"0s\"",
    ));
    assert!(m.contains("repeat_interval"), "{m}");
}

#[test]
fn the_readme_worker_example_is_a_valid_config() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Watchdog").expect("a watchdog section")..];
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let block = &section[start..];
    let block = &block[..block.find("```").expect("the block ends")];
    let s = parse(block, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.watchdog.interval, Duration::from_millis(120));
    assert_eq!(s.rules.len(), 4);
    assert_eq!(s.probes[0].get_ref().timeout, Duration::from_millis(100));
}

#[test]
fn a_rollup_retention_shorter_than_the_raw_one_is_refused_naming_both_keys() {
    let e = parse(
        "[storage]\nretention = \"60d\"\nrollup_retention = \"30d\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("rollup_retention (30d)") && e.contains("than retention (60d)"),
        "{e}"
    );
    // The default roll-up retention is 2y, as the config reads "2y".
    let e = parse("[storage]\nretention = \"3y\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("shorter than retention"), "{e}");
    let s = parse("[storage]\nretention = \"2y\"\n", &[]).unwrap();
    assert_eq!(s.storage.rollup_retention, s.storage.retention);
}

#[test]
fn allowed_hosts_take_names_wildcards_and_addresses_only() {
    let s = parse(
        "[server]\nallowed_hosts = [\"monitor.example\", \"*.fleet.example\", \"10.0.0.5\", \"*\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(s.server.allowed_hosts.len(), 4);
    assert!(parse("", &[]).unwrap().server.allowed_hosts.is_empty());
    for bad in ["evil.example/x", "a b", "", "*evil", "host:80", "http://x"] {
        let text = format!("[server]\n\nallowed_hosts = [{bad:?}]\n");
        let m = parse(&text, &[]).unwrap_err().to_string();
        assert!(
            m.contains("allowed_hosts") && m.contains("line 3"),
            "{bad}: {m}"
        );
    }
    let s = parse(
        "",
        &[("HOSTWATCH_SERVER__ALLOWED_HOSTS", "[\"hostwatch\"]")],
    )
    .unwrap();
    assert_eq!(s.server.allowed_hosts, ["hostwatch"]);
}

const HOOK_URL: &str = "url = \"http://127.0.0.1:9000/alerts\"";

/// The spec's example with the webhook's url line replaced by `lines`.
fn webhook(lines: &str) -> Result<Settings, ConfigError> {
    let text = WATCHDOG.replacen(HOOK_URL, lines, 1);
    assert_ne!(text, WATCHDOG);
    parse(&text, &[])
}

fn with_token(url: &str) -> String {
    format!("url = \"{url}\"\nbearer_token_file = \"/etc/hostwatch/hook.token\"")
}

#[test]
fn a_webhook_token_over_plain_http_to_another_host_is_refused() {
    for url in [
        "http://hooks.example.com/alerts",
        "http://10.0.0.7:9000/alerts",
    ] {
        let m = webhook(&with_token(url)).unwrap_err().to_string();
        assert!(
            m.contains("bearer_token_file") && m.contains("in the clear") && m.contains("line "),
            "{url}: {m}"
        );
    }
}

#[test]
fn a_webhook_token_over_https_or_to_loopback_is_accepted() {
    for url in [
        "http://127.0.0.1:9000/alerts",
        "http://localhost/alerts",
        "http://[::1]:9000/alerts",
        "https://hooks.example.com/alerts",
    ] {
        assert!(webhook(&with_token(url)).is_ok(), "{url}");
    }
    // Without a token there is no secret to send in the clear.
    assert!(webhook("url = \"http://hooks.example.com/alerts\"").is_ok());
}

#[test]
fn a_webhook_error_never_shows_the_urls_password_path_or_query() {
    for lines in [
        // Refused: a token in the clear.
        with_token("http://hooks.example.com/services/s3cret?token=s3cret"),
        // Refused: credentials in the url.
        "url = \"https://ops:s3cret@hooks.example.com/s3cret?token=s3cret\"".to_owned(),
        // Not http(s).
        "url = \"ftp://ops:s3cret@hooks.example.com/s3cret\"".to_owned(),
        // Not a URL at all.
        "url = \"http://ops:s3cret@hooks example.com/s3cret?token=s3cret\"".to_owned(),
        // Not a string: the TOML error quotes the line itself.
        "url = [\"https://ops:s3cret@hooks.example.com/s3cret?token=s3cret\"]".to_owned(),
    ] {
        let m = webhook(&lines).unwrap_err().to_string();
        assert!(!m.contains("s3cret"), "{lines}: {m}");
        assert!(m.contains("hooks") && m.contains("line "), "{lines}: {m}");
    }
}

fn remote(lines: &str) -> Result<Settings, ConfigError> {
    parse(&format!("[[remote_write]]\n{lines}"), &[])
}

#[test]
fn a_remote_write_receiver_takes_the_spec_defaults_and_is_named_by_its_origin() {
    let s = remote("url = \"http://127.0.0.1:9090/api/v1/write\"\n").unwrap();
    let r = s.remote_write[0].get_ref();
    assert_eq!(r.interval, Duration::from_secs(15));
    assert_eq!(r.max_backlog, Duration::from_secs(7 * 86_400));
    assert_eq!(r.timeout, Duration::from_secs(30));
    assert_eq!(r.shown_name(0), "receiver-1");
    let s = remote(
        "url = \"https://m.example/api/v1/push\"\nname = \"mimir\"\ninterval = \"1m\"\n\
         basic_auth = { username = \"u\", password_file = \"/p\" }\n",
    )
    .unwrap();
    assert_eq!(s.remote_write[0].get_ref().shown_name(0), "mimir");
}

#[test]
fn a_remote_write_receiver_that_could_leak_or_not_work_is_refused_with_its_line() {
    for (lines, says) in [
        ("url = \"ftp://h/x\"\n", "http:// or https://"),
        ("url = \"not a url\"\n", "is not a URL"),
        ("url = \"https://u:p@h/x\"\n", "holds credentials"),
        (
            "url = \"http://10.0.0.1/w\"\nbearer_token_file = \"/t\"\n",
            "in the clear",
        ),
        (
            "url = \"https://h/w\"\nbearer_token_file = \"/t\"\nbasic_auth = { username = \"u\", password_file = \"/p\" }\n",
            "not both",
        ),
        (
            "url = \"http://h/w\"\ntls_ca = \"/ca.pem\"\n",
            "tls_ca is for",
        ),
        ("url = \"http://h/w\"\ninterval = \"100ms\"\n", "interval"),
        (
            "url = \"http://h/w\"\ninterval = \"1m\"\nmax_backlog = \"30s\"\n",
            "max_backlog",
        ),
        (
            "url = \"http://h/w\"\nmax_backlog = \"400d\"\n",
            "max_backlog",
        ),
        ("url = \"http://h/w\"\nname = \"\"\n", "name"),
        ("url = \"http://h/w\"\nqueue = 3\n", "queue"),
    ] {
        let m = remote(lines).unwrap_err().to_string();
        assert!(m.contains(says), "{lines}: {m}");
        assert!(m.contains("line"), "{lines}: {m}");
    }
}

#[test]
fn two_receivers_need_two_urls_and_two_names() {
    let one = "[[remote_write]]\nurl = \"http://h:9090/api/v1/write\"\n";
    let m = parse(&format!("{one}{one}"), &[]).unwrap_err().to_string();
    assert!(m.contains("line 3") && m.contains("the same url"), "{m}");
    let named = |path: &str, name: &str| {
        format!("[[remote_write]]\nurl = \"http://h:9090/{path}\"\nname = \"{name}\"\n")
    };
    let m = parse(&format!("{}{}", named("a", "x"), named("b", "x")), &[])
        .unwrap_err()
        .to_string();
    assert!(m.contains("two receivers are named 'x'"), "{m}");
    // Unnamed, each is named by its place.
    let other = "[[remote_write]]\nurl = \"http://h:9090/other\"\n";
    let s = parse(&format!("{one}{other}"), &[]).unwrap();
    let names: Vec<String> = (0..2)
        .map(|i| s.remote_write[i].get_ref().shown_name(i))
        .collect();
    assert_eq!(names, ["receiver-1", "receiver-2"]);
}

#[test]
fn a_remote_write_error_never_shows_the_urls_path() {
    let m = remote("url = \"http://10.0.0.1/secret-path\"\nbearer_token_file = \"/t\"\n")
        .unwrap_err()
        .to_string();
    assert!(!m.contains("secret-path"), "{m}");
}
