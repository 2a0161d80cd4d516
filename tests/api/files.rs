//! What the agent leaves to the host: the files it makes beside its database
//! (the generated token, the database, its WAL and shared memory) are
//! private (0600), a token file others could read stops start-up with a
//! message that says how to fix it, and spawned commands get a clean
//! environment, not the agent's.

use crate::helpers::{CONTROL_TOKEN, READ_TOKEN, spawn_with, test_settings};
use hostwatch::{control::spawn::SPAWN_PATH, startup::Application};
use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[actix_web::test]
async fn the_generated_token_the_database_its_wal_and_shm_are_0600() {
    let app = spawn_with(|s| s.auth.tokens.clear()).await;
    let dir = app.dir.path().to_owned();
    let token = std::fs::read_to_string(dir.join("hostwatch.db.token")).unwrap();
    // A write, so the WAL holds something while the agent runs.
    let r = app
        .request("POST", "/api/v1/checks", Some(token.trim()), None)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    for name in [
        "hostwatch.db.token",
        "hostwatch.db",
        "hostwatch.db-wal",
        "hostwatch.db-shm",
    ] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_database_an_older_agent_left_readable_by_others_is_made_private() {
    let first = spawn_with(|_| {}).await;
    let dir = first.stop().await;
    let db = dir.path().join("hostwatch.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let settings = test_settings(dir.path());
    let app = crate::helpers::spawn_in(dir, settings).await;
    assert_eq!(mode(&app.db_path()), 0o600);
    app.stop().await;
}

#[actix_web::test]
async fn a_database_path_that_is_a_symlink_to_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere.db");
    let settings = test_settings(dir.path());
    std::os::unix::fs::symlink(&target, &settings.storage.path).unwrap();
    let e = Application::build(settings).await.err().expect("refused");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(!target.exists(), "created through the symlink");
}

#[test]
fn serve_refuses_a_token_file_others_can_read_and_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hostwatch.db.token");
    std::fs::write(&file, "hw_planted\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .arg("serve")
        .current_dir(dir.path())
        .env("HOSTWATCH_STORAGE__PATH", dir.path().join("hostwatch.db"))
        .env("HOSTWATCH_SERVER__LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Were the file accepted, the agent would serve on: bound the wait.
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the agent started with a token file mode 0666");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(
        err.contains(&format!("chmod 600 {}", file.display())) && err.contains("0666"),
        "{err}"
    );
    assert_eq!(mode(&file), 0o666, "the agent changed the file it refused");
}

#[actix_web::test]
async fn a_spawned_command_gets_path_lang_and_spawn_env_and_nothing_of_the_agent() {
    // The agent runs in this process: whatever cargo put in its environment
    // would reach the command if the environment were inherited.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let app = spawn_with(|s| {
        s.control.spawn_allow = vec!["/usr/bin/env".into()];
        s.control.spawn_env = BTreeMap::from([("TZ".into(), "UTC".into())]);
    })
    .await;
    let r = app
        .request(
            "POST",
            "/api/v1/processes",
            Some(CONTROL_TOKEN),
            Some(br#"{"command": "/usr/bin/env"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let job = format!("/api/v1/jobs/{}", r.json()["job_id"]);
    let ended = app
        .wait_until(Duration::from_secs(10), || async {
            app.request("GET", &job, Some(READ_TOKEN), None)
                .await
                .json()["state"]
                == "exited"
        })
        .await;
    let job = app.request("GET", &job, Some(READ_TOKEN), None).await;
    assert!(ended, "{}", job.text());
    let job = job.json();
    assert_eq!(job["exit_code"], 0);
    let env: BTreeSet<&str> = job["stdout"].as_str().unwrap().lines().collect();
    let path = format!("PATH={SPAWN_PATH}");
    assert_eq!(
        env,
        BTreeSet::from([path.as_str(), "LANG=C.UTF-8", "TZ=UTC"]),
        "the whole environment of the command"
    );
    app.stop().await;
}
