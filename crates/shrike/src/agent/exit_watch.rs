//! A bounded exit: once a stop is asked for (a signal, `--duration`, an error), the agent must
//! be gone within [`EXIT_LIMIT`]. Every wait of the shutdown has its own bound (a blocked
//! output gets [`crate::output::FINISH_MAX`] at most), so this only fires when something
//! waits without one — a system call that never returns, a thread that never ends. Then it
//! logs which step of the shutdown was stuck and ends the process: the kernel detaches what
//! was not pinned when the file descriptors close, and a service manager sees a failure with a
//! reason instead of a stop that hangs until it kills.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::error;

use crate::output::FINISH_MAX;
use crate::shutdown::Shutdown;

/// How long a stop may take, from the request to the exit: the longest bounded wait (a blocked
/// output), the outputs' grace, and a minute for detaching every program on a slow machine.
pub const EXIT_LIMIT: Duration = FINISH_MAX.saturating_add(Duration::from_secs(60));

/// How often the watch looks for a stop request.
const POLL: Duration = Duration::from_millis(250);

/// The exit code of a stop that did not finish within [`EXIT_LIMIT`].
const EXIT_STUCK: i32 = 70;

/// Where the stop is, as the watch reports it when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    /// A turn of the run loop (reading a batch, writing events, a reload, the API).
    Running,
    /// Receiving what the ring buffer still holds and writing it.
    DrainingRing,
    /// Closing the API's streams and the metrics endpoint.
    StoppingObservers,
    /// Waiting for the ring-buffer reader thread to end.
    JoiningReader,
    /// Giving the outputs their grace and finishing stdout.
    FinishingOutputs,
    /// Detaching the programs and freeing the maps.
    Detaching,
    /// Unmounting what shrike mounted.
    ReleasingMounts,
}

impl Step {
    const ALL: [Step; 7] = [
        Step::Running,
        Step::DrainingRing,
        Step::StoppingObservers,
        Step::JoiningReader,
        Step::FinishingOutputs,
        Step::Detaching,
        Step::ReleasingMounts,
    ];

    fn describe(self) -> &'static str {
        match self {
            Step::Running => "finishing a turn of the run loop",
            Step::DrainingRing => "draining the ring buffer to the outputs",
            Step::StoppingObservers => "stopping the local API and the metrics endpoint",
            Step::JoiningReader => "waiting for the ring-buffer reader thread",
            Step::FinishingOutputs => "finishing the outputs",
            Step::Detaching => "detaching the programs",
            Step::ReleasingMounts => "unmounting what shrike mounted",
        }
    }
}

/// The watch: a thread that starts counting when a stop is asked for (or [`ExitWatch::arm`]
/// is called) and ends the process if the run has not returned [`EXIT_LIMIT`] later. Dropping
/// it (the run returned) ends the thread.
pub struct ExitWatch {
    step: Arc<AtomicU8>,
    armed: Arc<AtomicBool>,
    /// Dropped with the watch: its thread then sees the channel close and ends.
    _done: Sender<()>,
}

impl ExitWatch {
    pub fn start(shutdown: &Shutdown) -> std::io::Result<ExitWatch> {
        Self::start_with(shutdown, EXIT_LIMIT, |step, limit| {
            error!(
                limit_secs = limit.as_secs(),
                stuck_at = step.describe(),
                "shrike did not stop in time: exiting without the rest of the shutdown"
            );
            std::process::exit(EXIT_STUCK)
        })
    }

    /// Like [`ExitWatch::start`], with the limit and what happens when it passes given.
    fn start_with(
        shutdown: &Shutdown,
        limit: Duration,
        fire: impl FnOnce(Step, Duration) + Send + 'static,
    ) -> std::io::Result<ExitWatch> {
        let step = Arc::new(AtomicU8::new(Step::Running as u8));
        let armed = Arc::new(AtomicBool::new(false));
        let (done, ended) = mpsc::channel::<()>();
        {
            let step = step.clone();
            let armed = armed.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name("shrike-exit-watch".into())
                .spawn(move || {
                    let mut deadline: Option<Instant> = None;
                    loop {
                        match ended.recv_timeout(POLL) {
                            Err(RecvTimeoutError::Timeout) => {}
                            // The run returned.
                            _ => return,
                        }
                        if deadline.is_none()
                            && (shutdown.was_requested() || armed.load(Ordering::Relaxed))
                        {
                            deadline = Some(Instant::now() + limit);
                        }
                        if deadline.is_some_and(|d| Instant::now() >= d) {
                            let at = Step::ALL[usize::from(step.load(Ordering::Relaxed))];
                            fire(at, limit);
                            return;
                        }
                    }
                })?;
        }
        Ok(ExitWatch {
            step,
            armed,
            _done: done,
        })
    }

    /// Starts the count even without a stop request (the run ended by `--duration` or an
    /// error).
    pub fn arm(&self) {
        self.armed.store(true, Ordering::Relaxed);
    }

    /// Records the step the shutdown is in.
    pub fn enter(&self, step: Step) {
        self.step.store(step as u8, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nothing fires while running or after the run returns; a stop that outlives the limit
    /// fires once, naming the step it was in.
    #[test]
    fn a_stop_that_outlives_the_limit_is_reported_at_its_step() {
        let shutdown = Shutdown::new();
        let (tx, fired) = mpsc::channel();
        let limit = Duration::from_millis(300);
        let watch = ExitWatch::start_with(&shutdown, limit, move |step, _| {
            tx.send(step).unwrap();
        })
        .unwrap();
        std::thread::sleep(limit * 3);
        assert!(fired.try_recv().is_err(), "fired without a stop request");
        shutdown.trigger();
        shutdown.take();
        watch.enter(Step::JoiningReader);
        assert_eq!(fired.recv_timeout(limit * 10).unwrap(), Step::JoiningReader);

        // A run that returns in time: dropping the watch ends it without firing.
        let (tx, fired) = mpsc::channel();
        let watch = ExitWatch::start_with(&Shutdown::new(), limit, move |step, _| {
            tx.send(step).unwrap();
        })
        .unwrap();
        watch.arm();
        drop(watch);
        assert!(matches!(
            fired.recv_timeout(limit * 3),
            Err(RecvTimeoutError::Disconnected)
        ));
    }
}
