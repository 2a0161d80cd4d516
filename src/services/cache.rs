//! The last state read of one service, so that reads cannot be turned into
//! load: a state read less than `FRESH` ago is answered as it is, and the
//! callers that find it stale share one read. The lock is held across the
//! read, so the callers that queue behind it find the state it read.

use super::state::ServiceView;
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};
use tokio::sync::Mutex;

/// How long a state is answered without running the status command again.
pub const FRESH: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Cache {
    last: Mutex<Option<Entry>>,
    /// Bumped when an action ends: a state read before that is not the state now.
    generation: AtomicU64,
}

struct Entry {
    view: ServiceView,
    /// When the read that gave it ended.
    at: Instant,
    generation: u64,
}

impl Cache {
    /// The state from a read that ended less than `FRESH` ago, or from one
    /// read now.
    pub async fn recent<F>(&self, read: F) -> ServiceView
    where
        F: Future<Output = ServiceView>,
    {
        let last = self.last.lock().await;
        self.answer(last, |e| e.at.elapsed() < FRESH, read).await
    }

    /// The state from a read that ended after this call began: a read
    /// already under way is joined, not run twice. `bound` limits the wait
    /// for it; `read` gets what is left of `bound`. `None` when the read
    /// under way did not end within `bound`.
    pub async fn fresh<F, Fut>(&self, bound: Option<Duration>, read: F) -> Option<ServiceView>
    where
        F: FnOnce(Option<Duration>) -> Fut,
        Fut: Future<Output = ServiceView>,
    {
        let asked = Instant::now();
        let last = match bound {
            Some(b) => tokio::time::timeout(b, self.last.lock()).await.ok()?,
            None => self.last.lock().await,
        };
        let left = bound.map(|b| b.saturating_sub(asked.elapsed()));
        Some(self.answer(last, |e| e.at >= asked, read(left)).await)
    }

    /// The next read, and every one under way, gives a state to keep; what
    /// was kept before is stale.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    async fn answer(
        &self,
        mut last: tokio::sync::MutexGuard<'_, Option<Entry>>,
        usable: impl Fn(&Entry) -> bool,
        read: impl Future<Output = ServiceView>,
    ) -> ServiceView {
        // Taken before the read: an action that ends while it runs makes
        // what it reads stale at once.
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(e) = last.as_ref()
            && e.generation == generation
            && usable(e)
        {
            return e.view.clone();
        }
        let view = read.await;
        *last = Some(Entry {
            view: view.clone(),
            at: Instant::now(),
            generation,
        });
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{domain::ServiceStatus, services::Resolved};
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering::SeqCst},
    };

    /// A read that counts itself and takes `ms`.
    async fn read(reads: &AtomicUsize, ms: u64) -> ServiceView {
        reads.fetch_add(1, SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ServiceView {
            name: "web".into(),
            manager: Resolved::Command,
            state: ServiceStatus::Running,
            healthy: None,
            probe_ms: None,
            checked_at: chrono::Utc::now(),
            detail: None,
            public_detail: None,
        }
    }

    #[tokio::test]
    async fn callers_that_find_the_state_stale_share_one_read() {
        let (cache, reads) = (Cache::default(), AtomicUsize::new(0));
        let all = (0..10).map(|_| cache.recent(read(&reads, 50)));
        futures_util::future::join_all(all).await;
        assert_eq!(reads.load(SeqCst), 1);
    }

    #[tokio::test]
    async fn an_action_that_ends_during_a_read_makes_that_read_stale() {
        let (cache, reads) = (Arc::new(Cache::default()), AtomicUsize::new(0));
        let during = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cache.invalidate();
        };
        tokio::join!(cache.recent(read(&reads, 100)), during);
        cache.recent(read(&reads, 0)).await;
        assert_eq!(reads.load(SeqCst), 2);
    }

    #[tokio::test]
    async fn a_check_joins_a_read_under_way_but_never_takes_an_older_one() {
        let (cache, reads) = (Cache::default(), AtomicUsize::new(0));
        let check = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cache.fresh(None, |_| read(&reads, 0)).await
        };
        let (_, joined) = tokio::join!(cache.recent(read(&reads, 100)), check);
        assert!(joined.is_some());
        assert_eq!(reads.load(SeqCst), 1, "the check joined the read under way");
        // The state is less than FRESH old, but older than this check.
        cache.fresh(None, |_| read(&reads, 0)).await;
        assert_eq!(reads.load(SeqCst), 2);
    }

    #[tokio::test]
    async fn a_check_waits_for_a_read_under_way_no_longer_than_its_bound() {
        let (cache, reads) = (Cache::default(), AtomicUsize::new(0));
        let check = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cache
                .fresh(Some(Duration::from_millis(50)), |_| read(&reads, 0))
                .await
        };
        let (_, gave_up) = tokio::join!(cache.recent(read(&reads, 500)), check);
        assert!(gave_up.is_none());
    }
}
