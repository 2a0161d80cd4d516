//! The token file against planted, loosened and raced files.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn planted(mode: u32) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let file = token_file(&db);
    std::fs::write(&file, "hw_planted\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, db, file)
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_generated_token_is_reused_and_private() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let (a, path) = load_or_create(&db).unwrap();
    let (b, _) = load_or_create(&db).unwrap();
    assert_eq!(a.sha256, b.sha256);
    assert_eq!(path, dir.path().join("h.db.token"));
    assert_eq!(mode_of(&path), 0o600);
}

#[test]
fn a_token_file_open_to_group_or_others_is_refused_and_left_as_it_is() {
    for mode in [0o644, 0o666, 0o640, 0o604, 0o620, 0o700 | 0o010] {
        let (_dir, db, file) = planted(mode);
        let e = load_or_create(&db).unwrap_err();
        assert!(matches!(e, TokenFileError::TooOpen { .. }), "{mode:o}: {e}");
        let m = e.to_string();
        assert!(m.contains(&format!("chmod 600 {}", file.display())), "{m}");
        assert!(m.contains(&format!("{mode:04o}")), "{m}");
        assert_eq!(mode_of(&file), mode, "the agent changed the mode");
    }
}

#[test]
fn a_private_planted_file_of_ours_is_used() {
    let (_dir, db, _) = planted(0o600);
    assert_eq!(load_or_create(&db).unwrap().0.sha256, sha256("hw_planted"));
}

#[test]
fn a_symlink_is_refused_and_nothing_is_written_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let target = dir.path().join("elsewhere");
    std::os::unix::fs::symlink(&target, token_file(&db)).unwrap();
    // Dangling: following it would create `elsewhere`.
    let e = load_or_create(&db).unwrap_err();
    assert!(matches!(e, TokenFileError::Symlink(_)), "{e}");
    assert!(!target.exists());
    // Pointing at a private token: still refused.
    std::fs::write(&target, "hw_x\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let m = load_or_create(&db).unwrap_err().to_string();
    assert!(
        m.contains("symbolic link") && m.contains("remove it"),
        "{m}"
    );
    assert!(m.contains(&token_file(&db).display().to_string()), "{m}");
}

#[test]
fn a_directory_or_fifo_is_refused_without_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    std::fs::create_dir(token_file(&db)).unwrap();
    let e = load_or_create(&db).unwrap_err();
    assert!(matches!(e, TokenFileError::NotAFile(_)), "{e}");
    std::fs::remove_dir(token_file(&db)).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(token_file(&db))
        .status()
        .unwrap();
    assert!(ok.success());
    let e = load_or_create(&db).unwrap_err();
    assert!(matches!(e, TokenFileError::NotAFile(_)), "{e}");
}

#[test]
fn a_token_file_of_another_user_is_refused() {
    let (_dir, db, file) = planted(0o600);
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        let m = load_or_create(&db).unwrap_err().to_string();
        assert!(m.contains("uid 65534") && m.contains("remove it"), "{m}");
        return;
    }
    // Not root: no file can be given away, so check one that is surely
    // someone else's (root's) with the same rule.
    eprintln!("not root: checking /etc/passwd instead of a chowned file");
    let passwd = Path::new("/etc/passwd");
    let m = std::fs::metadata(passwd).unwrap();
    if m.uid() != 0 {
        eprintln!("skipped: /etc/passwd is not root's here");
        return;
    }
    let e = check(passwd, &m).unwrap_err();
    assert!(
        matches!(e, TokenFileError::NotOwned { owner: 0, .. }),
        "{e}"
    );
}

#[test]
fn a_file_that_appears_before_the_create_is_an_error_not_overwritten() {
    let (_dir, _db, file) = planted(0o600);
    let e = create(&file).unwrap_err();
    assert!(matches!(e, TokenFileError::Raced { .. }), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hw_planted\n");
}

#[test]
fn an_empty_private_file_is_replaced_by_a_new_token() {
    let (_dir, db, file) = planted(0o600);
    std::fs::write(&file, "").unwrap();
    load_or_create(&db).unwrap();
    let text = std::fs::read_to_string(token_file(&db)).unwrap();
    assert_eq!(text.trim().len(), 67);
    assert_eq!(mode_of(&token_file(&db)), 0o600);
}

#[test]
fn two_generated_tokens_differ() {
    assert_ne!(generate().unwrap(), generate().unwrap());
    assert_eq!(generate().unwrap().len(), 67);
}

#[test]
fn the_config_entry_holds_the_hash_not_the_token() {
    let e = config_entry("ops", Scope::Read, "hw_secret");
    assert!(!e.contains("hw_secret"));
    assert!(e.contains(&hex::encode(sha256("hw_secret"))));
}
