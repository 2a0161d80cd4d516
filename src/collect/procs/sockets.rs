//! Socket inodes matched to `/proc/net/{tcp,tcp6,udp,udp6,unix}`, read once
//! per request that asks for connections.

use super::info::Connection;
use std::collections::HashMap;

struct Entry {
    family: &'static str,
    kind: &'static str,
    local: Option<String>,
    remote: Option<String>,
    status: String,
}

pub struct Sockets(HashMap<u64, Entry>);

/// The names `netstat` and psutil use.
fn tcp_state(s: &procfs::net::TcpState) -> &'static str {
    use procfs::net::TcpState::*;
    match s {
        Established => "ESTABLISHED",
        SynSent => "SYN_SENT",
        SynRecv | NewSynRecv => "SYN_RECV",
        FinWait1 => "FIN_WAIT1",
        FinWait2 => "FIN_WAIT2",
        TimeWait => "TIME_WAIT",
        Close => "CLOSE",
        CloseWait => "CLOSE_WAIT",
        LastAck => "LAST_ACK",
        Listen => "LISTEN",
        Closing => "CLOSING",
    }
}

impl Sockets {
    pub fn read() -> Self {
        let mut map = HashMap::new();
        for (family, list) in [("inet", procfs::net::tcp()), ("inet6", procfs::net::tcp6())] {
            for e in list.into_iter().flatten() {
                let status = tcp_state(&e.state).to_owned();
                map.insert(
                    e.inode,
                    Entry {
                        family,
                        kind: "stream",
                        local: Some(e.local_address.to_string()),
                        remote: Some(e.remote_address.to_string()),
                        status,
                    },
                );
            }
        }
        for (family, list) in [("inet", procfs::net::udp()), ("inet6", procfs::net::udp6())] {
            for e in list.into_iter().flatten() {
                map.insert(
                    e.inode,
                    Entry {
                        family,
                        kind: "dgram",
                        local: Some(e.local_address.to_string()),
                        remote: Some(e.remote_address.to_string()),
                        status: "NONE".into(),
                    },
                );
            }
        }
        for e in procfs::net::unix().into_iter().flatten() {
            let kind = match e.socket_type {
                1 => "stream",
                2 => "dgram",
                5 => "seqpacket",
                _ => "other",
            };
            map.insert(
                e.inode,
                Entry {
                    family: "unix",
                    kind,
                    local: e.path.map(|p| p.display().to_string()),
                    remote: None,
                    status: "NONE".into(),
                },
            );
        }
        Self(map)
    }

    pub fn connection(&self, inode: u64, fd: i32) -> Option<Connection> {
        self.0.get(&inode).map(|e| Connection {
            fd,
            family: e.family.into(),
            kind: e.kind.into(),
            local: e.local.clone(),
            remote: e.remote.clone(),
            status: e.status.clone(),
        })
    }
}
