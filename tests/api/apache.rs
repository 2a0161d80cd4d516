//! The real Apache httpd from Debian's packages, on loopback port 80. The
//! guard stops it (and any stray worker) when the test ends, passed or not.

use std::{
    net::TcpStream,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

pub const PID_FILE: &str = "/run/apache2/apache2.pid";
pub const URL: &str = "http://127.0.0.1:80/";

pub struct Apache;

impl Apache {
    /// Apache installed (scripts/test installs it), listening on loopback
    /// only, and stopped: the state every test starts from.
    pub fn stopped() -> Self {
        assert!(
            Path::new("/usr/sbin/apache2ctl").exists(),
            "apache2 is not installed: scripts/test installs it (apt-get install apache2)"
        );
        let ports = "/etc/apache2/ports.conf";
        let conf = std::fs::read_to_string(ports).unwrap();
        if conf.lines().any(|l| l.trim() == "Listen 80") {
            std::fs::write(ports, conf.replace("Listen 80\n", "Listen 127.0.0.1:80\n")).unwrap();
        }
        stop_all();
        Apache
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        stop_all();
    }
}

fn stop_all() {
    let _ = Command::new("apache2ctl").args(["-k", "stop"]).output();
    let end = Instant::now() + Duration::from_secs(10);
    while answers() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("pkill")
        .args(["-KILL", "-x", "apache2"])
        .output();
    let _ = std::fs::remove_file(PID_FILE);
}

/// Whether something accepts connections on loopback port 80.
pub fn answers() -> bool {
    TcpStream::connect_timeout(&"127.0.0.1:80".parse().unwrap(), Duration::from_millis(300)).is_ok()
}

/// The master process's pid, from its pid file.
pub fn master_pid() -> Option<u32> {
    std::fs::read_to_string(PID_FILE).ok()?.trim().parse().ok()
}

/// A GET to the default site, with the status code.
pub fn http_status() -> Option<u16> {
    use std::io::{Read, Write};
    let mut s =
        TcpStream::connect_timeout(&"127.0.0.1:80".parse().unwrap(), Duration::from_secs(2))
            .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).ok()?;
    String::from_utf8_lossy(&head[..n])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
