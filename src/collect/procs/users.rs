//! User names by uid, read from the user database again only when
//! `/etc/passwd` changes.

use std::{collections::HashMap, time::SystemTime};

#[derive(Default)]
pub struct UserNames {
    names: HashMap<u32, String>,
    passwd_mtime: Option<SystemTime>,
}

impl UserNames {
    /// Reads the user database again if `/etc/passwd` changed since.
    pub fn refresh(&mut self) {
        let mtime = std::fs::metadata("/etc/passwd")
            .and_then(|m| m.modified())
            .ok();
        if mtime.is_some() && mtime == self.passwd_mtime {
            return;
        }
        if let Ok(list) = sysinfo::Users::new_with_refreshed_list() {
            self.names = list
                .iter()
                .map(|u| (**u.id(), u.name().to_owned()))
                .collect();
        }
        self.passwd_mtime = mtime;
    }

    /// The user's name, or the uid as text for one the database lacks.
    pub fn name(&self, uid: u32) -> String {
        self.names
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    pub fn exists(&self, name: &str) -> bool {
        self.names.values().any(|u| u == name)
    }
}
