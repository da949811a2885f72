//! Noticing a watched process's exit when it happens, not at the next collection: on Linux, one
//! pidfd per watched pid (`pidfd_open`, Linux 5.3), polled by a thread that asks the host for a
//! collection when one becomes readable. A pidfd is readable once its process has exited, zombie
//! or not, so the exit is seen before (and whether or not) the parent reaps it.
//!
//! Where pidfds are not available (another OS, an older kernel: `ENOSYS`), [`ExitWatch::start`]
//! or [`ExitWatch::watch`] says so and the collector keeps to polling on its schedule.

#[cfg(target_os = "linux")]
pub(crate) use self::linux::ExitWatch;

#[cfg(not(target_os = "linux"))]
pub(crate) use self::fallback::ExitWatch;

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashMap;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::thread::JoinHandle;

    use monitor_plugin::Host;

    /// What the collecting thread and the watching thread share.
    #[derive(Default)]
    struct Watched {
        /// One pidfd per watched pid; the watching thread holds clones while it polls, so a
        /// descriptor removed here is closed only once no `poll` can still be using its number.
        fds: HashMap<u32, Arc<OwnedFd>>,
        stop: bool,
    }

    /// The watching thread and the pidfds it polls.
    pub(crate) struct ExitWatch {
        watched: Arc<Mutex<Watched>>,
        /// Wakes the thread to pick up a changed set (or stop).
        wake: Arc<OwnedFd>,
        thread: Option<JoinHandle<()>>,
        host: Host,
    }

    impl ExitWatch {
        /// Starts the watching thread; `Ok(None)` when this kernel has no pidfds.
        pub(crate) fn start(host: Host) -> io::Result<Option<Self>> {
            // Probe with our own pid: ENOSYS means no pidfds at all.
            match pidfd_open(std::process::id()) {
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return Ok(None),
                Err(e) => return Err(e),
                Ok(_probe) => {}
            }
            // SAFETY: plain syscall; the result is checked before use.
            let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh descriptor that nothing else owns.
            let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
            let watched = Arc::new(Mutex::new(Watched::default()));
            let thread = {
                let (watched, wake, host) = (watched.clone(), wake.clone(), host.clone());
                std::thread::Builder::new()
                    .name("process-exit-watch".into())
                    .spawn(move || run(&watched, &wake, &host))?
            };
            Ok(Some(Self {
                watched,
                wake,
                thread: Some(thread),
                host,
            }))
        }

        /// Watches exactly `pids` from now on: opens a pidfd for each new one, closes those of
        /// pids no longer listed. A pid that is already gone when its pidfd is opened asks for a
        /// collection at once. Returns `false` when pidfds turned out to be unavailable (the
        /// caller then stops using the watch).
        pub(crate) fn watch(&self, pids: &[u32]) -> bool {
            let mut gone = false;
            let mut changed = false;
            {
                let mut w = self.lock();
                let before = w.fds.len();
                w.fds.retain(|pid, _| pids.contains(pid));
                changed |= w.fds.len() != before;
                for &pid in pids {
                    if w.fds.contains_key(&pid) {
                        continue;
                    }
                    match pidfd_open(pid) {
                        Ok(fd) => {
                            w.fds.insert(pid, Arc::new(fd));
                            changed = true;
                        }
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => gone = true,
                        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return false,
                        // Out of descriptors, say: this pid is polled on the schedule only.
                        Err(_) => {}
                    }
                }
            }
            if changed {
                signal(&self.wake);
            }
            if gone {
                self.host.request_collection();
            }
            true
        }

        /// The pids watched now.
        #[cfg(test)]
        pub(crate) fn watched(&self) -> Vec<u32> {
            let mut pids: Vec<u32> = self.lock().fds.keys().copied().collect();
            pids.sort_unstable();
            pids
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
            self.watched.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }

    impl Drop for ExitWatch {
        fn drop(&mut self) {
            self.lock().stop = true;
            signal(&self.wake);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// The watching thread: polls the wake-up descriptor and every pidfd; a readable pidfd's pid
    /// is dropped from the set (its process exited) and the host asked for a collection.
    fn run(watched: &Mutex<Watched>, wake: &OwnedFd, host: &Host) {
        loop {
            let fds: Vec<(u32, Arc<OwnedFd>)> = {
                let w = watched.lock().unwrap_or_else(PoisonError::into_inner);
                if w.stop {
                    return;
                }
                w.fds.iter().map(|(p, f)| (*p, f.clone())).collect()
            };
            let mut polled: Vec<libc::pollfd> = std::iter::once(wake.as_raw_fd())
                .chain(fds.iter().map(|(_, f)| f.as_raw_fd()))
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: `polled` is a valid array of `len` pollfds; every descriptor in it stays
            // open for the call (`wake` is borrowed, the pidfds are held by `fds`).
            let n = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, -1) };
            if n < 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Nothing sensible to do but stop watching: collections go on on schedule.
                return;
            }
            if polled[0].revents != 0 {
                drain(wake);
            }
            let exited: Vec<(u32, &Arc<OwnedFd>)> = (fds.iter().zip(&polled[1..]))
                .filter(|(_, p)| p.revents != 0)
                .map(|((pid, fd), _)| (*pid, fd))
                .collect();
            if exited.is_empty() {
                continue;
            }
            let still_watched = {
                let mut w = watched.lock().unwrap_or_else(PoisonError::into_inner);
                let mut any = false;
                for (pid, fd) in &exited {
                    // Only the descriptor polled: the collector may have replaced it, or stopped
                    // watching its pid, while this thread was polling the older set.
                    if w.fds.get(pid).is_some_and(|f| Arc::ptr_eq(f, fd)) {
                        w.fds.remove(pid);
                        any = true;
                    }
                }
                any
            };
            // A pid the collector no longer watches asks for nothing.
            if still_watched {
                host.request_collection();
            }
        }
    }

    fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
        let pid =
            libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
        // SAFETY: plain syscall with integer arguments; the result is checked before use.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor that nothing else owns (pidfds are close-on-exec).
        Ok(unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) })
    }

    fn signal(fd: &OwnedFd) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd; a full counter (EAGAIN) already
        // means "wake up".
        let _ = unsafe { libc::write(fd.as_raw_fd(), std::ptr::from_ref(&one).cast(), 8) };
    }

    fn drain(fd: &OwnedFd) {
        let mut value: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from a non-blocking eventfd.
        let _ = unsafe { libc::read(fd.as_raw_fd(), std::ptr::from_mut(&mut value).cast(), 8) };
    }
}

#[cfg(not(target_os = "linux"))]
mod fallback {
    use monitor_plugin::Host;

    /// No exit notification on this system: the collector polls on its schedule.
    pub(crate) enum ExitWatch {}

    impl ExitWatch {
        pub(crate) fn start(_host: Host) -> std::io::Result<Option<Self>> {
            Ok(None)
        }

        pub(crate) fn watch(&self, _pids: &[u32]) -> bool {
            match *self {}
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::process::Command;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use monitor_plugin::Host;

    use super::ExitWatch;

    fn until(mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn an_exit_asks_for_a_collection_before_the_parent_reaps() {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let host = Host::from_fn(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let watch = ExitWatch::start(host)
            .unwrap()
            .expect("pidfds on this kernel");
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        let mut other = Command::new("sleep").arg("60").spawn().unwrap();
        assert!(watch.watch(&[child.id(), other.id()]));
        assert_eq!(watch.watched(), {
            let mut v = vec![child.id(), other.id()];
            v.sort_unstable();
            v
        });
        assert_eq!(requests.load(Ordering::SeqCst), 0);
        // Killed and not reaped: a zombie, whose pidfd is readable all the same.
        child.kill().unwrap();
        assert!(until(|| requests.load(Ordering::SeqCst) == 1));
        assert!(until(|| watch.watched() == [other.id()]));
        // A pid no longer listed is not watched any more: its exit asks for nothing.
        assert!(watch.watch(&[]));
        other.kill().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        let _ = child.wait();
        let _ = other.wait();
        // Already gone when asked to watch it: one request at once.
        assert!(watch.watch(&[child.id()]));
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }
}
