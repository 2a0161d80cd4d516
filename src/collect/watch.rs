//! STUB (replaced by the wd-probes branch): cheap readings for rules.
pub enum Matcher {
    Name(String),
    Cmdline(regex::Regex),
}
#[derive(Debug, Clone)]
pub struct ProcSample {
    pub pid: u32,
    pub start_ticks: u64,
    pub name: String,
    pub cmdline: String,
    pub cpu_percent: Option<f64>,
    pub memory_percent: f64,
    pub rss_bytes: u64,
}
pub struct ProcWatch {
    n: usize,
}
impl ProcWatch {
    pub fn new(m: Vec<Matcher>) -> Self {
        Self { n: m.len() }
    }
    pub fn refresh(&mut self) -> Vec<Vec<ProcSample>> {
        vec![Vec::new(); self.n]
    }
}
#[derive(Debug, Clone, Default)]
pub struct HostNow {
    pub cpu_percent: Option<f64>,
    pub memory_percent: f64,
    pub swap_percent: f64,
    pub load1: f64,
}
#[derive(Default)]
pub struct HostWatch;
impl HostWatch {
    pub fn new() -> Self {
        Self
    }
    pub fn read(&mut self) -> HostNow {
        HostNow::default()
    }
}
pub fn disk_percent(_mount: &str) -> Option<f64> {
    None
}
