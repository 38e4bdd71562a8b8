//! Heavy reads (a `/metrics` of 100,000 services: ~13 MB of text) run here: on one thread of
//! their own at the lowest priority (nice 19), never on an HTTP worker or on tokio's blocking
//! pool, whose threads run at the workers' priority.
//!
//! Why: a role may have one core. A render of that size takes tens of ms of CPU; on a thread
//! of normal priority the scheduler shares the core evenly between it and the HTTP workers, so
//! a heartbeat that arrives meanwhile waits for its turn (issue 18: heartbeat p99 27-29 ms at
//! 100,000 services while two clients looped on `/metrics`). At nice 19 the render has a
//! weight of 15 against a worker's 1024: a worker that wakes preempts it at once, and the
//! render gets what the workers leave.
//!
//! Nice 19 and not SCHED_IDLE: both let a worker preempt at once, but a SCHED_IDLE thread
//! gets a fifth of nice 19's share (weight 3) when the core is full, so a scrape during a
//! storm of heartbeats could miss Prometheus' scrape_timeout where nice 19 still finishes
//! (1.5% of a busy core). A render only waits; it never holds the workers up.
//!
//! One thread: renders queue behind each other, so however many clients loop on the heavy
//! reads they take one thread's share of the CPU, not one per request. A request whose client
//! has gone before its turn is skipped. Where the thread cannot be started (or on a system
//! without per-thread nice), renders fall back to tokio's blocking pool.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::OnceLock;

type Job = Box<dyn FnOnce() + Send>;

/// The render thread's queue; `None` if it could not be started.
static QUEUE: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();

/// The render thread's nice value: the lowest priority a normal thread can have.
pub const NICE: i32 = 19;

/// The render could not be done (it panicked, or the thread is gone).
#[derive(Debug, thiserror::Error)]
#[error("the render thread did not answer")]
pub struct RenderFailed;

/// Run `work` on the render thread and await its result.
pub async fn render<T, F>(work: F) -> Result<T, RenderFailed>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // The client may have gone while this waited its turn: nobody would read the render.
        if answer.is_closed() {
            return;
        }
        // A panicking render answers "failed" and the thread goes on with the next one.
        if let Ok(value) = std::panic::catch_unwind(AssertUnwindSafe(work)) {
            let _ = answer.send(value);
        }
    });
    match queue() {
        Some(queue) => {
            if let Err(mpsc::SendError(job)) = queue.send(job) {
                tokio::task::spawn_blocking(job);
            }
        }
        None => {
            tokio::task::spawn_blocking(job);
        }
    }
    answered.await.map_err(|_| RenderFailed)
}

fn queue() -> Option<&'static mpsc::Sender<Job>> {
    QUEUE
        .get_or_init(|| {
            let (sender, jobs) = mpsc::channel::<Job>();
            let started = std::thread::Builder::new()
                .name("obs-render".into())
                .spawn(move || {
                    lower_priority();
                    for job in jobs {
                        job();
                    }
                });
            match started {
                Ok(_) => Some(sender),
                Err(error) => {
                    tracing::warn!(%error, "no render thread; heavy reads run on the blocking pool");
                    None
                }
            }
        })
        .as_ref()
}

/// Lower the calling thread (only it: on Linux nice is per thread) to [`NICE`].
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid and setpriority take and return plain integers.
    let lowered = unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE)
    };
    if lowered != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "the render thread keeps its priority"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// This thread's nice value.
#[cfg(all(test, target_os = "linux"))]
fn current_nice() -> i32 {
    // SAFETY: as above; errno is cleared first because -1 is also a valid nice value.
    unsafe {
        *libc::__errno_location() = 0;
        let tid = libc::syscall(libc::SYS_gettid);
        libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_run_on_a_thread_of_the_lowest_priority() {
        let before = current_nice();
        let (name, nice) = render(|| {
            (
                std::thread::current().name().map(str::to_string),
                current_nice(),
            )
        })
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("obs-render"));
        assert_eq!(nice, NICE);
        assert_eq!(current_nice(), before, "the caller keeps its priority");
    }

    #[tokio::test]
    async fn a_panicking_render_fails_alone() {
        let failed = render(|| -> u32 { panic!("boom") }).await;
        assert!(failed.is_err());
        assert_eq!(render(|| 7).await.unwrap(), 7);
    }
}
