//! Plain types shared by every layer: no I/O, no HTTP, no SQL.

pub mod check;
pub mod metric;
pub mod probe;
pub mod process;
pub mod time;

pub use check::{
    Check, Cpu, Disk, Io, Memory, PartErrors, ServiceState, ServiceStatus, TopProcess,
};
pub use metric::Metric;
pub use process::{Nice, Pid, Signal};
pub use time::{ParseError, TimeRange};
