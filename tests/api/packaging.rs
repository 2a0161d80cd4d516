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
