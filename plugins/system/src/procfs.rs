//! The machine's figures straight from procfs (Linux). Each file is opened once and read again
//! from offset 0 at every collection into a buffer kept between collections (`pread`: procfs
//! renders the file anew for each read from the start), then parsed in place: a collection costs a
//! handful of reads and one `statvfs` per mounted file system: no directory walk, no file opened
//! again, no sysfs.
//!
//! The figures are the ones `sysinfo` gives (the collector's other platforms): CPU usage as the
//! share of non-idle time (idle + iowait is idle) between two readings, used memory as
//! `MemTotal - MemAvailable`, disk space from `statvfs` (`f_frsize` times `f_blocks` and
//! `f_bavail`), disk I/O from `/proc/diskstats` sectors (512 bytes), network bytes from
//! `/proc/net/dev`.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use monitor_plugin::{PluginError, Sample};

use crate::{Settings, cpu_samples, disk_samples, load_samples, memory_samples, network_samples};

/// Bytes per sector in `/proc/diskstats`, whatever the device's own sector size.
const SECTOR: u64 = 512;

/// A procfs file held open and read whole again on demand.
pub(crate) struct ProcFile {
    path: &'static str,
    file: Option<File>,
    buf: Vec<u8>,
    len: usize,
}

impl ProcFile {
    pub(crate) fn new(path: &'static str) -> Self {
        Self {
            path,
            file: None,
            buf: vec![0; 4096],
            len: 0,
        }
    }

    /// The file's whole text now; empty when it cannot be read (a file that fails is opened
    /// again once, at the next read, in case it was replaced).
    pub(crate) fn read(&mut self) -> &str {
        if self.fill().is_err() {
            self.file = None;
            self.len = 0;
        }
        // Every file read here is ASCII but `/proc/mounts`, whose paths may not be UTF-8: such a
        // file is cut at the first bad byte rather than dropped whole.
        let bytes = &self.buf[..self.len];
        match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(File::open(self.path)?);
        }
        let file = self.file.as_ref().expect("opened above");
        let mut used = 0;
        loop {
            if used == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = file.read_at(&mut self.buf[used..], used as u64)?;
            if n == 0 {
                break;
            }
            used += n;
        }
        self.len = used;
        Ok(())
    }
}

/// Cumulative CPU times of one `cpu` line of `/proc/stat`, in ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CpuTimes {
    total: u64,
    idle: u64,
}

impl CpuTimes {
    /// Busy share of the time between `before` and `self`, percent 0-100.
    pub(crate) fn usage_since(self, before: Self) -> f64 {
        let total = self.total.saturating_sub(before.total);
        if total == 0 {
            return 0.0;
        }
        let idle = self.idle.saturating_sub(before.idle);
        (total.saturating_sub(idle) as f64 * 100.0 / total as f64).min(100.0)
    }
}

/// Parses `/proc/stat`'s `cpu` lines into `all` (the first line) and `cores` (the `cpuN` lines, in
/// order). Returns whether the `cpu` line was there.
pub(crate) fn parse_stat(text: &str, all: &mut CpuTimes, cores: &mut Vec<CpuTimes>) -> bool {
    cores.clear();
    let mut found = false;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            // The cpu lines come first.
            if found {
                break;
            }
            continue;
        };
        let mut fields = rest.split_ascii_whitespace();
        let core = !rest.starts_with(' ');
        if core {
            fields.next();
        }
        // user nice system idle iowait irq softirq steal guest guest_nice: guest time is also
        // counted in user (and guest_nice in nice), so it is left out of the total.
        let mut v = [0u64; 10];
        for (slot, f) in v.iter_mut().zip(fields) {
            *slot = f.parse().unwrap_or(0);
        }
        let times = CpuTimes {
            total: v[..8].iter().fold(0u64, |a, b| a.saturating_add(*b)),
            idle: v[3].saturating_add(v[4]),
        };
        if core {
            cores.push(times);
        } else {
            *all = times;
            found = true;
        }
    }
    found
}

/// The three load averages of `/proc/loadavg`.
pub(crate) fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut f = text.split_ascii_whitespace().map(str::parse::<f64>);
    Some([f.next()?.ok()?, f.next()?.ok()?, f.next()?.ok()?])
}

/// Memory figures of `/proc/meminfo`, bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Memory {
    pub(crate) total: u64,
    pub(crate) available: u64,
    pub(crate) swap_total: u64,
    pub(crate) swap_free: u64,
}

pub(crate) fn parse_meminfo(text: &str) -> Memory {
    let (mut m, mut available) = (Memory::default(), None);
    // Before Linux 3.14 there is no MemAvailable: estimated from these, as `sysinfo` does.
    let (mut free, mut buffers, mut cached, mut shmem, mut reclaimable) = (0, 0, 0, 0, 0);
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let kib: u64 = (rest.split_ascii_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let bytes = kib.saturating_mul(1024);
        match key {
            "MemTotal" => m.total = bytes,
            "MemFree" => free = bytes,
            "MemAvailable" => available = Some(bytes),
            "Buffers" => buffers = bytes,
            "Cached" => cached = bytes,
            "Shmem" => shmem = bytes,
            "SReclaimable" => reclaimable = bytes,
            "SwapTotal" => m.swap_total = bytes,
            "SwapFree" => m.swap_free = bytes,
            _ => {}
        }
    }
    m.available = available.unwrap_or_else(|| {
        let sum: u64 = free + buffers + cached + reclaimable;
        sum.saturating_sub(shmem)
    });
    m
}

/// The file systems of `/proc/mounts` worth reporting: `(device, mount point)` in order, each
/// `(device, mount point, type)` once, pseudo and network file systems (and `tmpfs`) left out
/// as `sysinfo` leaves them out. The mount point keeps the file's escapes (`\040` for a space).
pub(crate) fn mounts(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut seen: Vec<(&str, &str, &str)> = Vec::new();
    text.lines().filter_map(move |line| {
        let mut f = line.split_ascii_whitespace();
        let (spec, file, kind) = (f.next()?, f.next()?, f.next()?);
        let pseudo = matches!(
            kind,
            "rootfs"
                | "sysfs"
                | "proc"
                | "devtmpfs"
                | "cgroup"
                | "cgroup2"
                | "pstore"
                | "squashfs"
                | "rpc_pipefs"
                | "iso9660"
                | "devpts"
                | "hugetlbfs"
                | "mqueue"
                | "tmpfs"
                // statvfs may hang on these when mounted `hard`.
                | "cifs"
                | "nfs"
                | "nfs4"
                | "autofs"
        );
        let skipped = pseudo
            || file.starts_with("/sys")
            || file.starts_with("/proc")
            || (file.starts_with("/run") && !file.starts_with("/run/media"))
            || spec.starts_with("sunrpc");
        if skipped || seen.contains(&(spec, file, kind)) {
            return None;
        }
        seen.push((spec, file, kind));
        Some((spec, file))
    })
}

/// A mount point of `/proc/mounts` with its octal escapes (`\040`, `\011`, `\012`, `\134`) undone.
pub(crate) fn unescape_mount(raw: &str) -> String {
    raw.replace("\\134", "\\")
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
}

/// Sectors read and written, from the `/proc/diskstats` line of device `name`.
pub(crate) fn diskstats_of(text: &str, name: &str) -> Option<(u64, u64)> {
    text.lines().find_map(|line| {
        let mut f = line.split_ascii_whitespace();
        if f.nth(2)? != name {
            return None;
        }
        let read = f.nth(2).and_then(|v| v.parse().ok()).unwrap_or(0);
        let written = f.nth(3).and_then(|v| v.parse().ok()).unwrap_or(0);
        Some((read, written))
    })
}

/// `(interface, received bytes, transmitted bytes)` of each line of `/proc/net/dev`.
pub(crate) fn net_dev(text: &str) -> impl Iterator<Item = (&str, u64, u64)> {
    text.lines().filter_map(|line| {
        let (name, rest) = line.split_once(':')?;
        let mut f = rest.split_ascii_whitespace();
        let received = f.next()?.parse().ok()?;
        let transmitted = f.nth(7)?.parse().ok()?;
        Some((name.trim(), received, transmitted))
    })
}

/// Total and available bytes of the file system mounted at `path`; `None` when `statvfs` fails
/// or reports no blocks.
pub(crate) fn statvfs(path: &str) -> Option<(u64, u64)> {
    let c = std::ffi::CString::new(path).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `stat` points to writable memory of the right
    // type; the result is read only when the call says it filled it.
    let stat = unsafe {
        if libc::statvfs(c.as_ptr(), stat.as_mut_ptr()) != 0 {
            return None;
        }
        stat.assume_init()
    };
    // The widths of these fields differ between targets (32-bit `c_ulong`).
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let (frsize, blocks, bavail) = (
        stat.f_frsize as u64,
        stat.f_blocks as u64,
        stat.f_bavail as u64,
    );
    let total = frsize.saturating_mul(blocks);
    (total > 0).then(|| (total, frsize.saturating_mul(bavail)))
}

/// The name `/proc/diskstats` knows a mounted device by: its path resolved (`/dev/mapper/x` to
/// `dm-0`) without `/dev/`, or the device field itself (`overlay`).
pub(crate) fn kernel_device_name(device: &str) -> String {
    std::fs::canonicalize(device)
        .ok()
        .and_then(|p| {
            p.strip_prefix("/dev")
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| device.to_owned())
}

/// CPU usage needs two readings: those taken closer together than this reuse the last figures
/// (a collection asked for just after the scheduled one), as `sysinfo` does.
const MIN_CPU_INTERVAL: Duration = Duration::from_millis(200);

/// What the collector keeps between collections on Linux.
pub(crate) struct Procfs {
    pub(crate) stat: ProcFile,
    pub(crate) loadavg: ProcFile,
    pub(crate) meminfo: ProcFile,
    pub(crate) mounts: ProcFile,
    pub(crate) diskstats: ProcFile,
    pub(crate) net_dev: ProcFile,
    cpu_at: Option<Instant>,
    cpu: CpuTimes,
    cores: Vec<CpuTimes>,
    reading: Vec<CpuTimes>,
    /// Last usage figures: all CPUs, then per core.
    pub(crate) usage: f64,
    pub(crate) core_usage: Vec<f64>,
    /// `/proc/diskstats` names by mounted device, resolved once each.
    pub(crate) device_names: HashMap<String, String>,
}

impl Procfs {
    /// Opens nothing yet but takes the first CPU reading, so that the first collection has a
    /// usage over its interval.
    pub(crate) fn start(_settings: &Settings) -> Result<Self, PluginError> {
        let mut p = Self::new();
        p.refresh_cpu();
        if p.cpu_at.is_none() {
            return Err("cannot read /proc/stat".into());
        }
        Ok(p)
    }

    /// Reads every figure `settings` asks for into `s`.
    pub(crate) fn collect(&mut self, settings: &Settings, s: &mut Vec<Sample>) {
        self.refresh_cpu();
        cpu_samples(
            s,
            self.usage,
            self.core_usage.iter().copied(),
            settings.per_core,
        );
        if let Some(load) = parse_loadavg(self.loadavg.read()) {
            load_samples(s, load);
        }
        let m = parse_meminfo(self.meminfo.read());
        memory_samples(
            s,
            m.total,
            m.available,
            m.swap_total,
            m.swap_total.saturating_sub(m.swap_free),
        );
        if settings.disks {
            self.disks(s);
        }
        if settings.network {
            for (name, received, transmitted) in net_dev(self.net_dev.read()) {
                network_samples(s, name, received, transmitted);
            }
        }
    }

    fn disks(&mut self, s: &mut Vec<Sample>) {
        let stats = self.diskstats.read();
        for (device, raw_mount) in mounts(self.mounts.read()) {
            let mount = unescape_mount(raw_mount);
            let (total, avail) = statvfs(&mount).unwrap_or((0, 0));
            if !self.device_names.contains_key(device) {
                let name = kernel_device_name(device);
                self.device_names.insert(device.to_owned(), name);
            }
            let (read, written) = diskstats_of(stats, &self.device_names[device]).unwrap_or((0, 0));
            disk_samples(
                s,
                device,
                &mount,
                total,
                avail,
                read * SECTOR,
                written * SECTOR,
            );
        }
    }

    fn new() -> Self {
        Self {
            stat: ProcFile::new("/proc/stat"),
            loadavg: ProcFile::new("/proc/loadavg"),
            meminfo: ProcFile::new("/proc/meminfo"),
            mounts: ProcFile::new("/proc/mounts"),
            diskstats: ProcFile::new("/proc/diskstats"),
            net_dev: ProcFile::new("/proc/net/dev"),
            cpu_at: None,
            cpu: CpuTimes::default(),
            cores: Vec::new(),
            reading: Vec::new(),
            usage: 0.0,
            core_usage: Vec::new(),
            device_names: HashMap::new(),
        }
    }

    /// Reads `/proc/stat` and updates the usage figures (kept as they are when the last reading
    /// is too recent or the file unreadable).
    pub(crate) fn refresh_cpu(&mut self) {
        if self.cpu_at.is_some_and(|t| t.elapsed() < MIN_CPU_INTERVAL) {
            return;
        }
        let mut all = CpuTimes::default();
        if !parse_stat(self.stat.read(), &mut all, &mut self.reading) {
            return;
        }
        if self.cpu_at.is_some() {
            self.usage = all.usage_since(self.cpu);
            self.core_usage.clear();
            for (i, now) in self.reading.iter().enumerate() {
                let before = self.cores.get(i).copied().unwrap_or_default();
                self.core_usage.push(now.usage_since(before));
            }
        } else {
            self.core_usage = vec![0.0; self.reading.len()];
        }
        self.cpu_at = Some(Instant::now());
        self.cpu = all;
        std::mem::swap(&mut self.cores, &mut self.reading);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 10 50 800 40 0 0 0 5 0\n\
                        cpu0 60 5 25 400 10 0 0 0 5 0\n\
                        cpu1 40 5 25 400 30 0 0 0 0 0\n\
                        intr 12345 0 0\n\
                        ctxt 999\n";

    #[test]
    fn stat_gives_the_whole_and_each_core() {
        let (mut all, mut cores) = (CpuTimes::default(), Vec::new());
        assert!(parse_stat(STAT, &mut all, &mut cores));
        assert_eq!(
            all,
            CpuTimes {
                total: 1000,
                idle: 840
            }
        );
        assert_eq!(cores.len(), 2);
        assert_eq!(
            cores[1],
            CpuTimes {
                total: 500,
                idle: 430
            }
        );
        assert!(!parse_stat("intr 1\n", &mut all, &mut cores));
    }

    #[test]
    fn usage_is_the_busy_share_between_two_readings() {
        let before = CpuTimes {
            total: 1000,
            idle: 840,
        };
        let after = CpuTimes {
            total: 1200,
            idle: 990,
        };
        assert!((after.usage_since(before) - 25.0).abs() < 1e-9);
        // No time passed, or a counter went back: no usage rather than nonsense.
        assert_eq!(before.usage_since(before), 0.0);
        assert_eq!(before.usage_since(after), 0.0);
    }

    #[test]
    fn loadavg_and_meminfo_parse() {
        assert_eq!(
            parse_loadavg("0.50 1.25 2.00 1/234 5678\n"),
            Some([0.5, 1.25, 2.0])
        );
        assert_eq!(parse_loadavg("garbage"), None);
        let m = parse_meminfo(
            "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    600 kB\n\
             SwapTotal:       200 kB\nSwapFree:        150 kB\n",
        );
        assert_eq!(
            m,
            Memory {
                total: 1_024_000,
                available: 614_400,
                swap_total: 204_800,
                swap_free: 153_600
            }
        );
        // An old kernel without MemAvailable: free + buffers + cached + reclaimable - shmem.
        let old = parse_meminfo(
            "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\n\
             SReclaimable: 20 kB\nShmem: 30 kB\n",
        );
        assert_eq!(old.available, 300 * 1024);
    }

    #[test]
    fn mounts_leave_out_pseudo_file_systems_and_repeats() {
        let text = "proc /proc proc rw 0 0\n\
                    /dev/vda / ext4 rw 0 0\n\
                    tmpfs /dev/shm tmpfs rw 0 0\n\
                    /dev/vdb /data\\040disk xfs rw 0 0\n\
                    /dev/vda / ext4 rw 0 0\n\
                    /dev/vdc /run/user ext4 rw 0 0\n\
                    server:/x /mnt/x nfs4 rw 0 0\n";
        let found: Vec<_> = mounts(text).collect();
        assert_eq!(found, [("/dev/vda", "/"), ("/dev/vdb", "/data\\040disk")]);
        assert_eq!(unescape_mount("/data\\040disk"), "/data disk");
    }

    #[test]
    fn diskstats_and_net_dev_parse() {
        let disks = " 253       0 vda 1000 10 2048 500 300 20 4096 700 0 900 1200\n\
                      253      16 vdb 1 0 8 0 0 0 0 0 0 0 0\n";
        assert_eq!(diskstats_of(disks, "vda"), Some((2048, 4096)));
        assert_eq!(diskstats_of(disks, "vdb"), Some((8, 0)));
        assert_eq!(diskstats_of(disks, "sda"), None);
        let net = "Inter-|   Receive |  Transmit\n \
                   face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    \
                   lo: 4200 11 0 0 0 0 0 0 4300 11 0 0 0 0 0 0\n  \
                   eth0: 5657 246 0 0 0 0 0 0 1592 169 0 0 0 0 0 0\n";
        let found: Vec<_> = net_dev(net).collect();
        assert_eq!(found, [("lo", 4200, 4300), ("eth0", 5657, 1592)]);
    }

    #[test]
    fn a_proc_file_reads_fresh_text_each_time() {
        let mut f = ProcFile::new("/proc/self/stat");
        let first = f.read().to_owned();
        assert!(first.starts_with(&std::process::id().to_string()));
        // The same descriptor, read again: the file is rendered anew, not served from the end.
        assert!(!f.read().is_empty());
        let mut missing = ProcFile::new("/proc/no-such-file");
        assert_eq!(missing.read(), "");
    }

    #[test]
    fn cpu_usage_needs_a_second_reading() {
        let mut p = Procfs::new();
        p.refresh_cpu();
        assert_eq!(p.usage, 0.0);
        assert!(
            !p.core_usage.is_empty(),
            "one figure per core from the first reading"
        );
        std::thread::sleep(MIN_CPU_INTERVAL + Duration::from_millis(50));
        p.refresh_cpu();
        assert!((0.0..=100.0).contains(&p.usage));
        assert_eq!(p.core_usage.len(), p.cores.len());
    }
}
