//! What `/proc` says about a process: its memory and the CPU time it has used.

use std::{fs, process::Command};

/// Memory of a process, from `/proc/PID/status` and `/proc/PID/smaps_rollup`.
#[derive(Clone, Copy, Default)]
pub struct Mem {
    /// VmRSS: what the targets are stated in.
    pub rss: u64,
    /// Heap, stacks and other private memory: what the process itself allocated.
    pub anon: u64,
    /// Pages of the executable and shared libraries, shared with every process running them.
    pub file: u64,
    /// Proportional set size: RSS with each shared page divided among its sharers, i.e. what one
    /// more process of the kind really costs (0 where the kernel lacks `smaps_rollup`).
    pub pss: u64,
    /// Threads, since each one has a stack and tokio's blocking pool can grow.
    pub threads: u64,
}

pub fn mem(pid: u32) -> Mem {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    Mem {
        rss: kib_field(&status, "VmRSS:") * 1024,
        anon: kib_field(&status, "RssAnon:") * 1024,
        file: kib_field(&status, "RssFile:") * 1024,
        pss: kib_field(&rollup, "Pss:") * 1024,
        threads: kib_field(&status, "Threads:"),
    }
}

/// The number after `name` on its line of a `/proc` file (in kB for memory fields), or 0.
fn kib_field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Nanoseconds a process has spent on a CPU: the first field of `/proc/PID/schedstat`, or,
/// where the kernel lacks it, utime + stime from `/proc/PID/stat` (clock-tick resolution).
pub fn cpu_ns(pid: u32) -> u64 {
    if let Some(ns) = schedstat_ns(format!("/proc/{pid}/schedstat")) {
        return ns;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    let fields: Vec<u64> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(11) // after ')': state is field 3, utime field 14
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum::<u64>() * 1_000_000_000 / clock_ticks()
}

fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Nanoseconds all live threads of process `pid` have spent on a CPU (the first field of each
/// `/proc/PID/task/TID/schedstat`), and how many threads there were. `/proc/PID/schedstat` is
/// the main thread's alone, which undercounts a process that works in other threads too. A
/// thread that exits between two readings takes its time with it, so a caller compares the
/// thread counts of both readings.
pub fn cpu_ns_all_threads(pid: u32) -> (u64, usize) {
    let mut total = 0;
    let mut threads = 0;
    for tid in threads_of(pid) {
        let Some(ns) = schedstat_ns(format!("/proc/{pid}/task/{tid}/schedstat")) else {
            continue; // the thread ended while the directory was read
        };
        total += ns;
        threads += 1;
    }
    (total, threads)
}

/// The ids of the live threads of process `pid` (`/proc/PID/task`).
pub fn threads_of(pid: u32) -> Vec<u32> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/task: {e}"))
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The first field of a `schedstat` file: nanoseconds on a CPU, or `None` where there is none.
fn schedstat_ns(path: impl AsRef<std::path::Path>) -> Option<u64> {
    fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
