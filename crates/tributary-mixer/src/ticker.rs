//! The shared ticker: audio-only and pass-through tasks tick on a few threads (one per
//! core) instead of a thread each.
//!
//! Such a task's tick costs a fraction of a millisecond, but it comes 50 times a second:
//! with a thread per task, 100 rooms meant 5,000 thread wake-ups a second, and the
//! context switches cost about a sixth of the CPU. A ticker thread holds many tasks,
//! sleeps until the earliest is due and then runs every task that is due. It wakes at
//! most once per [`GRAIN`], so tasks whose ticks fall close together share a wake-up;
//! a tick runs up to one grain late, which costs nothing but that much latency (output
//! timestamps come from the sample count, not from when the tick ran).
//!
//! A task whose update gives it video (a heavy tick) leaves for a thread of its own; the
//! ticker never runs a video composition.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::task::Ended;

/// The least time between two wake-ups of a ticker thread.
const GRAIN: Duration = Duration::from_millis(4);

/// A task as the ticker sees it: a clock of ticks.
pub(crate) trait Ticking: Send {
    /// Runs every tick due by now; says when the next is due, or that the task ended.
    fn step(&mut self) -> Step;
    /// Whether its ticks are cheap enough to share a thread (checked after every step:
    /// an update can change it).
    fn is_light(&self) -> bool;
}

/// What [`Ticking::step`] left.
pub(crate) enum Step {
    /// The next tick is due at this instant.
    Due(Instant),
    Ended(Ended),
}

/// What to do when a task ends (its events and logs), on whichever thread ran it.
pub(crate) type Finish = Box<dyn FnOnce(Ended) + Send>;

/// A task on the ticker, with what to do when it ends.
pub(crate) struct Job {
    pub mix: Box<dyn Ticking>,
    pub finish: Finish,
}

impl Job {
    /// Runs the task on the calling thread (a thread of its own) until it ends, then
    /// finishes it.
    pub fn run_alone(mut self) {
        let ended = run_alone(self.mix.as_mut());
        (self.finish)(ended);
    }
}

struct Worker {
    /// New tasks for this thread. Unbounded, but it never holds more than the tasks that
    /// admission let in, and the thread takes them at its next wake-up.
    tx: Mutex<Sender<Job>>,
    tasks: Arc<AtomicUsize>,
}

/// The ticker threads; tasks go to the one holding the fewest.
pub(crate) struct Ticker {
    workers: Vec<Worker>,
}

impl Ticker {
    /// Starts `threads` ticker threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Ticker> {
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = channel();
            let tasks = Arc::new(AtomicUsize::new(0));
            let count = tasks.clone();
            std::thread::Builder::new()
                .name(format!("mix-ticker-{i}"))
                .spawn(move || run(rx, count))?;
            workers.push(Worker {
                tx: Mutex::new(tx),
                tasks,
            });
        }
        Ok(Ticker { workers })
    }

    /// Hands a task to the least loaded thread. Gives it back if every thread is gone.
    pub fn add(&self, job: Job) -> Result<(), Job> {
        let Some(w) = self
            .workers
            .iter()
            .min_by_key(|w| w.tasks.load(Ordering::Relaxed))
        else {
            return Err(job);
        };
        w.tasks.fetch_add(1, Ordering::Relaxed);
        let sent = w.tx.lock().unwrap_or_else(|e| e.into_inner()).send(job);
        sent.map_err(|e| {
            w.tasks.fetch_sub(1, Ordering::Relaxed);
            e.0
        })
    }

    /// Tasks held by each thread.
    #[cfg(test)]
    pub fn load(&self) -> Vec<usize> {
        self.workers
            .iter()
            .map(|w| w.tasks.load(Ordering::Relaxed))
            .collect()
    }
}

/// One ticker thread: runs its tasks as they fall due, forever.
fn run(rx: Receiver<Job>, count: Arc<AtomicUsize>) {
    let mut jobs: Vec<(Instant, Job)> = Vec::new();
    let mut last_wake = Instant::now();
    loop {
        // Sleep until the earliest task is due (but not within a grain of the last
        // wake-up), or until a new task comes.
        let next = jobs.iter().map(|(at, _)| *at).min();
        let got = match next {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => {
                let at = at.max(last_wake + GRAIN);
                rx.recv_timeout(at.saturating_duration_since(Instant::now()))
            }
        };
        match got {
            Ok(job) => jobs.push((Instant::now(), job)),
            Err(RecvTimeoutError::Timeout) => {}
            // The engine is gone: finish what is held, then end.
            Err(RecvTimeoutError::Disconnected) if jobs.is_empty() => return,
            Err(RecvTimeoutError::Disconnected) => {}
        }
        while let Ok(job) = rx.try_recv() {
            jobs.push((Instant::now(), job));
        }
        let now = Instant::now();
        last_wake = now;
        let mut i = 0;
        while i < jobs.len() {
            if jobs[i].0 > now {
                i += 1;
                continue;
            }
            match jobs[i].1.mix.step() {
                Step::Due(at) if jobs[i].1.mix.is_light() => {
                    jobs[i].0 = at;
                    i += 1;
                }
                Step::Due(_) => {
                    let (_, job) = jobs.swap_remove(i);
                    count.fetch_sub(1, Ordering::Relaxed);
                    if let Some(job) = own_thread(job) {
                        // No thread to be had: it stays here, heavy as it is.
                        count.fetch_add(1, Ordering::Relaxed);
                        jobs.push((Instant::now(), job));
                    }
                }
                Step::Ended(ended) => {
                    let (_, job) = jobs.swap_remove(i);
                    count.fetch_sub(1, Ordering::Relaxed);
                    (job.finish)(ended);
                }
            }
        }
    }
}

/// Moves a task that became heavy (an update gave it video) to a thread of its own.
/// Gives it back when the system refuses a thread.
fn own_thread(job: Job) -> Option<Job> {
    let slot = Arc::new(Mutex::new(Some(job)));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name("mix".into())
        .spawn(move || {
            let taken = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(job) = taken {
                job.run_alone();
            }
        });
    match spawned {
        Ok(_) => None,
        Err(e) => {
            warn!(error = %e, "cannot start a mix thread; the task stays on the ticker");
            slot.lock().unwrap_or_else(|e| e.into_inner()).take()
        }
    }
}

/// Runs a task on the calling thread until it ends.
fn run_alone(mix: &mut dyn Ticking) -> Ended {
    loop {
        match mix.step() {
            Step::Ended(e) => return e,
            // Wait in short steps so a stop is seen quickly.
            Step::Due(at) => {
                let left = at.saturating_duration_since(Instant::now());
                std::thread::sleep(left.clamp(Duration::from_millis(1), Duration::from_millis(20)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::mpsc::Receiver;

    use super::*;

    /// A task that ticks every `every`, records the thread of each tick, and ends after
    /// `ticks` ticks or when stopped.
    struct Fake {
        every: Duration,
        next: Instant,
        ticks: usize,
        done: usize,
        /// After this many ticks it says it is heavy.
        heavy_after: Option<usize>,
        stop: Arc<AtomicBool>,
        threads: Arc<Mutex<Vec<String>>>,
    }

    impl Ticking for Fake {
        fn step(&mut self) -> Step {
            if self.stop.load(Ordering::Relaxed) {
                return Step::Ended(Ended::Stopped);
            }
            if self.next > Instant::now() {
                return Step::Due(self.next);
            }
            let name = std::thread::current().name().unwrap_or("").to_string();
            self.threads.lock().unwrap().push(name);
            self.done += 1;
            if self.done == self.ticks {
                return Step::Ended(Ended::Idle);
            }
            self.next += self.every;
            Step::Due(self.next)
        }
        fn is_light(&self) -> bool {
            self.heavy_after.is_none_or(|k| self.done < k)
        }
    }

    fn fake(
        ticks: usize,
        heavy_after: Option<usize>,
        stop: &Arc<AtomicBool>,
    ) -> (Fake, Arc<Mutex<Vec<String>>>) {
        let threads = Arc::new(Mutex::new(Vec::new()));
        let f = Fake {
            every: Duration::from_millis(5),
            next: Instant::now(),
            ticks,
            done: 0,
            heavy_after,
            stop: stop.clone(),
            threads: threads.clone(),
        };
        (f, threads)
    }

    fn job(f: Fake, ended: &std::sync::mpsc::Sender<Ended>) -> Job {
        let tx = ended.clone();
        Job {
            mix: Box::new(f),
            finish: Box::new(move |e| {
                let _ = tx.send(e);
            }),
        }
    }

    fn wait_ended(rx: &Receiver<Ended>, n: usize) -> Vec<Ended> {
        (0..n)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(10))
                    .expect("a task ended")
            })
            .collect()
    }

    #[test]
    fn many_tasks_tick_on_one_thread_until_each_ends() {
        let ticker = Ticker::start(1).unwrap();
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut seen = Vec::new();
        for _ in 0..20 {
            let (f, threads) = fake(5, None, &stop);
            seen.push(threads);
            ticker.add(job(f, &tx)).map_err(|_| ()).unwrap();
        }
        let ended = wait_ended(&rx, 20);
        assert!(ended.iter().all(|e| matches!(e, Ended::Idle)));
        for threads in &seen {
            let t = threads.lock().unwrap();
            assert_eq!(t.len(), 5, "every tick ran once");
            assert!(t.iter().all(|n| n == "mix-ticker-0"), "{t:?}");
        }
        assert_eq!(ticker.load(), vec![0]);
    }

    #[test]
    fn a_task_that_turns_heavy_moves_to_a_thread_of_its_own() {
        let ticker = Ticker::start(1).unwrap();
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, threads) = fake(6, Some(2), &stop);
        ticker.add(job(f, &tx)).map_err(|_| ()).unwrap();
        let ended = wait_ended(&rx, 1);
        assert!(matches!(ended[0], Ended::Idle));
        let t = threads.lock().unwrap().clone();
        assert_eq!(t.len(), 6);
        assert_eq!(&t[..2], ["mix-ticker-0", "mix-ticker-0"]);
        assert!(t[2..].iter().all(|n| n == "mix"), "{t:?}");
        assert_eq!(ticker.load(), vec![0]);
        // Nothing more comes: the task ended once.
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }

    #[test]
    fn tasks_spread_over_the_threads_and_stop_when_asked() {
        let ticker = Ticker::start(2).unwrap();
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..4 {
            let (f, _) = fake(usize::MAX, None, &stop);
            ticker.add(job(f, &tx)).map_err(|_| ()).unwrap();
        }
        assert_eq!(ticker.load(), vec![2, 2]);
        stop.store(true, Ordering::Relaxed);
        let ended = wait_ended(&rx, 4);
        assert!(ended.iter().all(|e| matches!(e, Ended::Stopped)));
        assert_eq!(ticker.load(), vec![0, 0]);
    }
}
