//! The files a newcomer relies on: docker-compose.yml is valid (no Docker
//! engine runs here, so it is read with a YAML parser), and the README's test
//! command is the one CI runs.

use serde_yaml_ng::Value;

fn repo_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn docker_compose_runs_hostwatch_on_the_host_with_a_volume_and_loopback_port() {
    let doc: Value = serde_yaml_ng::from_str(&repo_file("docker-compose.yml")).unwrap();
    let svc = &doc["services"]["hostwatch"];
    assert!(svc.is_mapping(), "no hostwatch service");
    assert_eq!(svc["build"]["context"].as_str(), Some("."));
    assert_eq!(svc["pid"].as_str(), Some("host"));
    let ports: Vec<&str> = svc["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        ports.iter().all(|p| p.starts_with("127.0.0.1:")),
        "{ports:?}"
    );
    let volumes: Vec<&str> = svc["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        volumes
            .iter()
            .any(|v| v.starts_with("/:") && v.ends_with(":ro")),
        "the host's root, read-only: {volumes:?}"
    );
    let named = volumes
        .iter()
        .find(|v| v.starts_with("hostwatch-data:"))
        .expect("database on a named volume");
    assert!(
        doc["volumes"]["hostwatch-data"].is_mapping() || doc["volumes"]["hostwatch-data"].is_null()
    );
    let env = &svc["environment"];
    let listen = env["HOSTWATCH_SERVER__LISTEN"].as_str().unwrap();
    assert!(listen.starts_with("0.0.0.0:"), "{listen}");
    let db = env["HOSTWATCH_STORAGE__PATH"].as_str().unwrap();
    assert!(
        db.starts_with(named.split(':').nth(1).unwrap()),
        "database {db} is not on the volume {named}"
    );
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_in_a_small_one() {
    let d = repo_file("Dockerfile");
    assert_eq!(
        d.lines().filter(|l| l.starts_with("FROM ")).count(),
        2,
        "{d}"
    );
    assert!(d.contains("COPY --from="));
    assert!(d.contains("ENTRYPOINT"));
}

#[test]
fn ci_runs_the_test_command_the_readme_gives() {
    let readme = repo_file("README.md");
    let ci = repo_file(".ci/run");
    let cmd = readme
        .lines()
        .find(|l| l.contains("scripts/test"))
        .expect("README names the test command")
        .trim();
    assert!(
        ci.lines().any(|l| l.trim() == cmd),
        "{cmd:?} not in .ci/run"
    );
}

#[test]
fn the_prometheus_profile_scrapes_the_agent_with_a_config_promtool_accepts() {
    let doc: Value = serde_yaml_ng::from_str(&repo_file("docker-compose.yml")).unwrap();
    let prom = &doc["services"]["prometheus"];
    assert!(prom.is_mapping(), "no prometheus service");
    let profiles: Vec<&str> = prom["profiles"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(profiles, ["prometheus"], "only with --profile prometheus");
    let strs = |v: &Value| -> Vec<String> {
        v.as_sequence()
            .unwrap()
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        strs(&prom["ports"])
            .iter()
            .all(|p| p.starts_with("127.0.0.1:"))
    );
    let volumes = strs(&prom["volumes"]);
    let config = volumes
        .iter()
        .find(|v| v.ends_with(":/etc/prometheus/prometheus.yml:ro"))
        .expect("the config mounted read-only");
    let file = config.split(':').next().unwrap().trim_start_matches("./");
    assert!(
        volumes
            .iter()
            .any(|v| v == "hostwatch-data:/var/lib/hostwatch:ro"),
        "the agent's volume, read-only: {volumes:?}"
    );
    assert!(
        doc["volumes"]["prometheus-data"].is_mapping()
            || doc["volumes"]["prometheus-data"].is_null()
    );

    // The scrape config names the agent's service and port, and the token
    // file where the agent writes it.
    let text = repo_file(file);
    let scrape: Value = serde_yaml_ng::from_str(&text).unwrap();
    let job = &scrape["scrape_configs"][0];
    let target = job["static_configs"][0]["targets"][0].as_str().unwrap();
    let listen = doc["services"]["hostwatch"]["environment"]["HOSTWATCH_SERVER__LISTEN"]
        .as_str()
        .unwrap();
    assert_eq!(
        target,
        format!("hostwatch:{}", listen.rsplit(':').next().unwrap())
    );
    let token = job["authorization"]["credentials_file"].as_str().unwrap();
    let db = doc["services"]["hostwatch"]["environment"]["HOSTWATCH_STORAGE__PATH"]
        .as_str()
        .unwrap();
    assert_eq!(token, format!("{db}.token"));

    // promtool checks the whole file, with the token file it refers to.
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("token");
    std::fs::write(&stand_in, "a-token\n").unwrap();
    let checked = dir.path().join("prometheus.yml");
    std::fs::write(
        &checked,
        text.replace(token, &stand_in.display().to_string()),
    )
    .unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "config"])
        .arg(&checked)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool (scripts/test installs prometheus): {e}"));
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn the_systemd_unit_is_valid_sandboxed_and_still_sees_every_process() {
    let unit = repo_file("deploy/hostwatch.service");
    let keys: Vec<(&str, &str)> = unit
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .collect();
    let get = |k: &str| keys.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    assert!(get("ExecStart").unwrap().contains(" serve"));
    assert_eq!(get("ProtectSystem"), Some("strict"));
    assert_eq!(get("NoNewPrivileges"), Some("yes"));
    let caps = get("CapabilityBoundingSet").unwrap();
    for cap in [
        "CAP_KILL",
        "CAP_SYS_NICE",
        "CAP_SYS_PTRACE",
        "CAP_DAC_READ_SEARCH",
    ] {
        assert!(caps.contains(cap), "{cap} is needed: {caps}");
    }
    // What would hide the host's processes from it.
    for hiding in ["ProtectProc", "PrivatePIDs", "PrivateUsers", "ProcSubset"] {
        assert!(get(hiding).is_none(), "{hiding} hides /proc");
    }
    assert!(
        get("ReadWritePaths")
            .unwrap()
            .contains("/var/lib/hostwatch")
    );

    // systemd's own check, on the unit with this build's binary.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostwatch.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/hostwatch", env!("CARGO_BIN_EXE_hostwatch")),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run systemd-analyze (scripts/test installs systemd): {e}")
        });
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_readmes_promql_queries_parse() {
    let readme = repo_file("README.md");
    let block = readme
        .split("```promql\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a promql block in the README");
    let queries: Vec<&str> = block
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(queries.len(), 3, "{queries:?}");
    // As recording rules, which promtool parses and type-checks.
    let rules: String = queries
        .iter()
        .enumerate()
        .map(|(i, q)| format!("      - record: readme:query{i}\n        expr: '{q}'\n"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(
        &file,
        format!("groups:\n  - name: readme\n    rules:\n{rules}"),
    )
    .unwrap();
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run promtool (scripts/test installs prometheus): {e}"));
    assert!(out.status.success(), "{out:?}");
}
