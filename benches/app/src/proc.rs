//! Reading Linux's `/proc`: the process table (pid, parent, name, start time), the descendants of
//! a process, and a process's proportional set size from `smaps_rollup`.
//!
//! Everything here parses text the kernel wrote about processes that may exit at any moment, so
//! every parser returns `None` on anything unexpected and a vanished process is simply skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One process as `/proc/PID/stat` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub parent: u32,
    /// Its name (`comm`, at most 15 bytes, may contain spaces and parentheses).
    pub name: String,
    /// When it started, in clock ticks since boot (field 22).
    pub start_ticks: u64,
}

/// Parses one `/proc/PID/stat` line. The name sits between the first `(` and the LAST `)`,
/// because it may itself contain `)` and spaces; the fields after it are space-separated.
pub fn parse_stat(text: &str) -> Option<ProcessInfo> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text.get(..open)?.trim().parse().ok()?;
    let name = text.get(open.checked_add(1)?..close)?.to_owned();
    // After ") ": field 3 (state) is index 0, so field N is index N - 3.
    let rest: Vec<&str> = text
        .get(close.checked_add(1)?..)?
        .split_whitespace()
        .collect();
    let parent = rest.get(1)?.parse().ok()?;
    let start_ticks = rest.get(19)?.parse().ok()?;
    Some(ProcessInfo {
        pid,
        parent,
        name,
        start_ticks,
    })
}

/// Reads every process currently in `/proc` (processes that vanish while reading are skipped).
pub fn process_table() -> Vec<ProcessInfo> {
    process_table_under(Path::new("/proc"))
}

/// [`process_table`] for a `/proc`-like directory (tests use a fake one).
pub fn process_table_under(proc_root: &Path) -> Vec<ProcessInfo> {
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|name| !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect()
}

/// The processes below `root` in `table` (children, their children, …), not `root` itself,
/// in pid order.
pub fn descendants(table: &[ProcessInfo], root: u32) -> Vec<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for process in table {
        if process.pid != process.parent {
            children
                .entry(process.parent)
                .or_default()
                .push(process.pid);
        }
    }
    let mut found = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if child != root && found.insert(child) {
                stack.push(child);
            }
        }
    }
    found.into_iter().collect()
}

/// The `Pss:` figure of a `smaps_rollup` text, in KiB.
pub fn parse_pss_kib(smaps_rollup: &str) -> Option<u64> {
    smaps_rollup.lines().find_map(|line| {
        let value = line.strip_prefix("Pss:")?;
        let mut parts = value.split_whitespace();
        let number = parts.next()?.parse().ok()?;
        (parts.next()? == "kB").then_some(number)
    })
}

/// A process's PSS in KiB, or `None` when it is gone (or not ours to read).
pub fn pss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    parse_pss_kib(&text)
}

/// Whether a process with this pid exists (a zombie counts until it is reaped).
pub fn is_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The target of `/proc/PID/exe` (the running binary), when readable.
pub fn executable(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Seconds since boot from `/proc/uptime` (10 ms resolution), the clock of
/// [`ProcessInfo::start_ticks`].
pub fn uptime_seconds() -> Option<f64> {
    parse_uptime(&std::fs::read_to_string("/proc/uptime").ok()?)
}

/// Parses `/proc/uptime`'s first field.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// Clock ticks per second of `/proc/PID/stat` start times. Linux reports them in `USER_HZ`,
/// which is 100 on every architecture Sealpost runs on.
pub const TICKS_PER_SECOND: f64 = 100.0;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use test_case::test_case;

    const STAT_TAIL: &str = "S 41 41 41 0 -1 4194304 100 0 0 0 3 1 0 0 20 0 4 0 987654 \
                             12345678 900 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0";

    #[test_case("1234 (sealpost) ", "sealpost" ; "plain name")]
    #[test_case("77 (WebKitWebProces) ", "WebKitWebProces" ; "truncated comm")]
    #[test_case("5 (a b) c)) ", "a b) c)" ; "spaces and parentheses in the name")]
    #[test_case("9 () ", "" ; "empty name")]
    fn stat_lines(head: &str, name: &str) {
        let info = parse_stat(&format!("{head}{STAT_TAIL}")).unwrap();
        assert_eq!(info.name, name);
        assert_eq!(info.parent, 41);
        assert_eq!(info.start_ticks, 987_654);
    }

    #[test_case("" ; "empty")]
    #[test_case("12 (x" ; "no closing parenthesis")]
    #[test_case("12 (x) S 1" ; "too few fields")]
    #[test_case("x (y) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 0 0 1 0 5" ; "pid not a number")]
    #[test_case(") (" ; "parentheses reversed")]
    fn stat_garbage_is_none(text: &str) {
        assert_eq!(parse_stat(text), None);
    }

    #[test]
    fn reads_our_own_stat() {
        let me = std::process::id();
        let table = process_table();
        let mine = table.iter().find(|p| p.pid == me).unwrap();
        assert!(mine.start_ticks > 0);
        assert!(pss_kib(me).unwrap() > 0);
        assert!(is_alive(me));
        assert_eq!(
            executable(me).unwrap(),
            std::env::current_exe().unwrap().canonicalize().unwrap()
        );
        assert!(uptime_seconds().unwrap() > 0.0);
    }

    #[test]
    fn reads_a_fake_proc_directory() {
        let root = tempfile::tempdir().unwrap();
        for (pid, parent) in [(10, 1), (11, 10)] {
            let dir = root.path().join(pid.to_string());
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(
                dir.join("stat"),
                format!("{pid} (p{pid}) S {parent} 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {pid}"),
            )
            .unwrap();
        }
        std::fs::create_dir(root.path().join("self")).unwrap();
        std::fs::create_dir(root.path().join("12")).unwrap(); // vanished: no stat
        let mut table = process_table_under(root.path());
        table.sort_by_key(|p| p.pid);
        assert_eq!(
            table
                .iter()
                .map(|p| (p.pid, p.parent, p.name.as_str(), p.start_ticks))
                .collect::<Vec<_>>(),
            vec![(10, 1, "p10", 10), (11, 10, "p11", 11)]
        );
    }

    fn process(pid: u32, parent: u32) -> ProcessInfo {
        ProcessInfo {
            pid,
            parent,
            name: format!("p{pid}"),
            start_ticks: 0,
        }
    }

    #[test]
    fn descendants_walk_the_whole_subtree() {
        // 1 ─ 10 (driver) ─ 20 (webdriver) ─ 30 (app) ┬ 40 (web) ─ 50 (helper)
        //                                               └ 41 (network)
        // and an unrelated 60 under 1.
        let table = vec![
            process(1, 0),
            process(10, 1),
            process(20, 10),
            process(30, 20),
            process(40, 30),
            process(41, 30),
            process(50, 40),
            process(60, 1),
        ];
        assert_eq!(descendants(&table, 30), vec![40, 41, 50]);
        assert_eq!(descendants(&table, 10), vec![20, 30, 40, 41, 50]);
        assert_eq!(descendants(&table, 50), Vec::<u32>::new());
        assert_eq!(descendants(&table, 999), Vec::<u32>::new());
    }

    #[test]
    fn descendants_survive_a_cycle() {
        // The kernel never reports one, but a pid reused mid-read could look like it.
        let table = vec![process(2, 3), process(3, 2), process(4, 3)];
        assert_eq!(descendants(&table, 2), vec![3, 4]);
    }

    #[test_case("Rss:  100 kB\nPss:   42 kB\nPss_Anon: 1 kB\n", Some(42) ; "rollup")]
    #[test_case("Pss_Anon: 1 kB\nPss: 7 kB", Some(7) ; "pss after pss_anon")]
    #[test_case("Rss: 100 kB\n", None ; "no pss line")]
    #[test_case("Pss: many kB\n", None ; "not a number")]
    #[test_case("Pss: 5 MB\n", None ; "unexpected unit")]
    #[test_case("Pss: 5\n", None ; "no unit")]
    fn pss_lines(text: &str, expected: Option<u64>) {
        assert_eq!(parse_pss_kib(text), expected);
    }

    #[test_case("12345.67 2345.00\n", Some(12_345.67) ; "normal")]
    #[test_case("", None ; "empty")]
    #[test_case("x y", None ; "garbage")]
    fn uptime_lines(text: &str, expected: Option<f64>) {
        assert_eq!(parse_uptime(text), expected);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,300}") {
            let _ = parse_stat(&text);
            let _ = parse_pss_kib(&text);
            let _ = parse_uptime(&text);
        }

        #[test]
        fn stat_round_trip(
            pid in 1u32..4_000_000,
            parent in 0u32..4_000_000,
            name in "[ -~]{0,15}",
            start in 0u64..u64::MAX / 2,
        ) {
            let text = format!(
                "{pid} ({name}) S {parent} 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 1 2 3"
            );
            let info = parse_stat(&text).unwrap();
            prop_assert_eq!(info, ProcessInfo { pid, parent, name, start_ticks: start });
        }
    }
}
