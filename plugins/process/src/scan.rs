//! Finding processes by name or command line: one pass over `/proc` that reads of each process
//! only what the targets match on (`comm` for a name, `cmdline` for a command line) and its `stat`
//! (the state) once it matches, into buffers kept between scans. `sysinfo` would read `stat`,
//! `status` and `cmdline` and build a whole process record per pid for the same answer.

use std::fs::File;
use std::io::Read;

/// The buffers a scan reads into, kept between scans.
#[derive(Default)]
pub(crate) struct Scanner {
    path: String,
    comm: Vec<u8>,
    stat: Vec<u8>,
    cmdline: Vec<u8>,
}

/// What a target matches on, as the scan sees a process.
pub(crate) struct Wanted<'a> {
    pub(crate) process_name: Option<&'a str>,
    pub(crate) cmdline_contains: Option<&'a str>,
}

impl Scanner {
    /// For each of `wanted`, the lowest pid of a running process (not a zombie) that matches it;
    /// `None` where nothing does. Per process it reads `comm` when a target names a process,
    /// `cmdline` when one looks into command lines, and `stat` (the state) only for a match.
    pub(crate) fn scan(&mut self, wanted: &[Wanted<'_>]) -> Vec<Option<u32>> {
        let mut found = vec![None; wanted.len()];
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let (mut comm, mut cmdline) = (None, None);
            for (i, w) in wanted.iter().enumerate() {
                if found[i].is_some_and(|f| f < pid) {
                    continue;
                }
                if let Some(name) = w.process_name {
                    let ok = *comm.get_or_insert_with(|| self.read(pid, "comm", Which::Comm));
                    if !ok || self.comm.strip_suffix(b"\n").unwrap_or(&self.comm) != name.as_bytes()
                    {
                        continue;
                    }
                }
                if let Some(part) = w.cmdline_contains {
                    let ok = *cmdline.get_or_insert_with(|| {
                        let ok = self.read(pid, "cmdline", Which::Cmdline);
                        joined(&mut self.cmdline);
                        ok
                    });
                    if !ok || !contains(&self.cmdline, part.as_bytes()) {
                        continue;
                    }
                }
                if self.read(pid, "stat", Which::Stat)
                    && parse_stat(&self.stat).is_some_and(|s| s.1)
                {
                    found[i] = Some(pid);
                }
            }
        }
        found
    }

    fn read(&mut self, pid: u32, file: &str, which: Which) -> bool {
        use std::fmt::Write as _;
        self.path.clear();
        let _ = write!(self.path, "/proc/{pid}/{file}");
        let buf = match which {
            Which::Comm => &mut self.comm,
            Which::Stat => &mut self.stat,
            Which::Cmdline => &mut self.cmdline,
        };
        buf.clear();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(buf))
            .is_ok()
    }
}

enum Which {
    Comm,
    Stat,
    Cmdline,
}

/// The name (`comm`, between the first `(` and the last `)`) and whether the process runs
/// (state neither `Z` zombie nor `X` dead) from a `/proc/PID/stat` line.
pub(crate) fn parse_stat(stat: &[u8]) -> Option<(&[u8], bool)> {
    let open = stat.iter().position(|b| *b == b'(')?;
    let close = stat.iter().rposition(|b| *b == b')')?;
    let name = stat.get(open + 1..close)?;
    let state = stat.get(close + 1..)?.iter().find(|b| **b != b' ')?;
    Some((name, !matches!(state, b'Z' | b'X' | b'x')))
}

/// `/proc/PID/cmdline`'s arguments joined by one space, as the command line reads.
fn joined(cmdline: &mut Vec<u8>) {
    if cmdline.last() == Some(&0) {
        cmdline.pop();
    }
    for b in cmdline.iter_mut() {
        if *b == 0 {
            *b = b' ';
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_gives_the_name_and_state_even_with_parentheses_in_the_name() {
        assert_eq!(
            parse_stat(b"42 (my (odd) name) S 1 42 42 0"),
            Some((&b"my (odd) name"[..], true))
        );
        assert_eq!(parse_stat(b"43 (gone) Z 1 43"), Some((&b"gone"[..], false)));
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn the_command_line_reads_with_spaces() {
        let mut c = b"sleep\x00600123\x00".to_vec();
        joined(&mut c);
        assert_eq!(c, b"sleep 600123");
        assert!(contains(&c, b"sleep 600"));
        assert!(!contains(&c, b"sleep 7"));
    }

    #[test]
    fn a_scan_finds_this_process_by_name_and_command_line() {
        let me = std::process::id();
        let stat = std::fs::read(format!("/proc/{me}/stat")).unwrap();
        let name = String::from_utf8(parse_stat(&stat).unwrap().0.to_vec()).unwrap();
        let arg0 = std::env::args().next().unwrap();
        let mut s = Scanner::default();
        let found = s.scan(&[
            Wanted {
                process_name: None,
                cmdline_contains: Some(&arg0),
            },
            Wanted {
                process_name: Some("no such process name"),
                cmdline_contains: None,
            },
        ]);
        assert!(found[0].is_some_and(|pid| pid <= me), "{found:?}");
        assert_eq!(found[1], None);
        let by_name = s.scan(&[Wanted {
            process_name: Some(&name),
            cmdline_contains: None,
        }]);
        assert!(by_name[0].is_some());
    }
}
