//! Spawned processes ("jobs"): recorded when started, finished with their
//! exit status and the tail of their output.

use super::{Result, Store, StoreError, checks::millis_to_time};
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};
use serde::Serialize;
use utoipa::ToSchema;

/// A spawned process and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, ToSchema)]
pub struct Job {
    pub id: i64,
    /// The token that asked for it.
    pub actor: String,
    /// The program as it was run (the resolved path).
    pub command: String,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub pid: Option<u32>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `running`, `exited`, `signaled`, or `lost` (the agent stopped while it ran).
    pub state: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The last 64 KiB of its standard output.
    pub stdout: String,
    /// The last 64 KiB of its standard error.
    pub stderr: String,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobEnd {
    pub state: &'static str,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

const COLUMNS: &str = "id, actor, command, args, cwd, pid, started_at, ended_at, state, exit_code, signal, stdout, stderr";

fn row(r: &Row<'_>) -> rusqlite::Result<Job> {
    let args: String = r.get(3)?;
    Ok(Job {
        id: r.get(0)?,
        actor: r.get(1)?,
        command: r.get(2)?,
        args: serde_json::from_str(&args).unwrap_or_default(),
        cwd: r.get(4)?,
        pid: r.get(5)?,
        started_at: millis_to_time(r.get(6)?),
        ended_at: r.get::<_, Option<i64>>(7)?.map(millis_to_time),
        state: r.get(8)?,
        exit_code: r.get(9)?,
        signal: r.get(10)?,
        stdout: r.get(11)?,
        stderr: r.get(12)?,
    })
}

impl Store {
    pub fn insert_job(
        &self,
        actor: &str,
        command: &str,
        args: &[String],
        cwd: Option<&str>,
        pid: u32,
    ) -> Result<i64> {
        let args = serde_json::to_string(args).map_err(|e| StoreError::Encode(e.to_string()))?;
        self.write(|c| {
            c.execute(
                "INSERT INTO jobs (actor, command, args, cwd, pid, started_at, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running')",
                params![actor, command, args, cwd, pid, Utc::now().timestamp_millis()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    pub fn finish_job(&self, id: i64, end: &JobEnd) -> Result<()> {
        self.write(|c| {
            c.execute(
                "UPDATE jobs SET ended_at = ?2, state = ?3, exit_code = ?4, signal = ?5, stdout = ?6, stderr = ?7 WHERE id = ?1",
                params![id, Utc::now().timestamp_millis(), end.state, end.exit_code, end.signal, end.stdout, end.stderr],
            )?;
            Ok(())
        })
    }

    /// Jobs still `running` from an earlier run of the agent: nobody waits
    /// for them any more.
    pub fn mark_lost_jobs(&self) -> Result<usize> {
        self.write(|c| {
            Ok(c.execute(
                "UPDATE jobs SET state = 'lost', ended_at = ?1 WHERE state = 'running'",
                [Utc::now().timestamp_millis()],
            )?)
        })
    }

    /// Deletes jobs that ended before `cutoff`, in batches; a running job stays.
    pub fn purge_jobs_before(&self, cutoff: DateTime<Utc>, batch: u32) -> Result<u64> {
        self.purge_in_batches(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
             WHERE ended_at IS NOT NULL AND ended_at < ?1 LIMIT ?2)",
            cutoff,
            batch,
        )
    }

    pub fn job(&self, id: i64) -> Result<Job> {
        self.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                [id],
                row,
            )?)
        })
    }

    /// Newest first.
    pub fn jobs(&self, limit: u32) -> Result<Vec<Job>> {
        self.read(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM jobs ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = st.query_map([limit], row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
