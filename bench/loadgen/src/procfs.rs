//! A server's memory as Linux reports it in `/proc/PID/status`.

/// `VmHWM` (peak resident set size) of `pid`, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

/// `VmRSS` (current resident set size) of `pid`, in KiB.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets `pid`'s peak RSS to its current RSS (`echo 5 > /proc/PID/clear_refs`, Linux ≥ 4.0; needs
/// the right to write there, i.e. the same user or root). Returns false when that is not possible, in
/// which case `VmHWM` is the peak since the process started.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_status_is_readable() {
        let me = std::process::id();
        // RSS first: the peak read afterwards is at least any earlier RSS.
        let rss = vm_rss_kib(me).expect("VmRSS");
        let hwm = vm_hwm_kib(me).expect("VmHWM");
        assert!(hwm >= rss && rss > 0);
    }
}
