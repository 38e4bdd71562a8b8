//! Host gauges every HOST_METRICS_INTERVAL: load averages, memory used ratio, disk used
//! ratio. Read from /proc and statvfs(2) directly: three small files, no crate needed.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use obs_core::CancellationToken;

use crate::Shared;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HostSample {
    pub load: [f64; 3],
    pub memory_used_ratio: f64,
    pub disk_used_ratio: f64,
}

pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let Some(interval) = shared.config.host_metrics_interval else {
        return;
    };
    let disk_path = shared.config.host_disk_path.clone();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match sample(&disk_path) {
            Ok(sample) => {
                failing = false;
                let metrics = &shared.metrics;
                metrics.host_load1.set(sample.load[0]);
                metrics.host_load5.set(sample.load[1]);
                metrics.host_load15.set(sample.load[2]);
                metrics.host_memory_used_ratio.set(sample.memory_used_ratio);
                metrics.host_disk_used_ratio.set(sample.disk_used_ratio);
                tracing::debug!(?sample, "host sample");
            }
            // Said once, not every interval: the cause (no /proc, a bad path) will not go away.
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(error = format!("{error:#}"), "cannot read host gauges");
            }
            Err(_) => {}
        }
    }
}

pub fn sample(disk_path: &Path) -> anyhow::Result<HostSample> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").context("reading /proc/loadavg")?;
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    Ok(HostSample {
        load: parse_loadavg(&loadavg).context("parsing /proc/loadavg")?,
        memory_used_ratio: parse_memory_used_ratio(&meminfo).context("parsing /proc/meminfo")?,
        disk_used_ratio: disk_used_ratio(disk_path)
            .with_context(|| format!("statvfs {} (HOST_DISK_PATH)", disk_path.display()))?,
    })
}

fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text
        .split_whitespace()
        .map(|field| field.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// 1 - MemAvailable / MemTotal: memory the kernel could not hand out without swapping.
fn parse_memory_used_ratio(text: &str) -> Option<f64> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
    };
    let total = field("MemTotal")?;
    let available = field("MemAvailable")?;
    (total > 0.0).then(|| (1.0 - available / total).clamp(0.0, 1.0))
}

/// Used / (used + available to unprivileged users), which is what `df`'s Use% shows.
fn disk_used_ratio(path: &Path) -> anyhow::Result<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: c_path is a valid NUL-terminated string and stats a properly sized out-param.
    let result = unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) };
    if result != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let used = stats.f_blocks.saturating_sub(stats.f_bfree) as f64;
    let usable = used + stats.f_bavail as f64;
    Ok(if usable > 0.0 { used / usable } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        assert_eq!(
            parse_loadavg("0.45 0.30 0.20 1/123 4567\n"),
            Some([0.45, 0.30, 0.20])
        );
        assert_eq!(parse_loadavg("garbage"), None);
        let meminfo = "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n";
        assert_eq!(parse_memory_used_ratio(meminfo), Some(0.75));
        assert_eq!(parse_memory_used_ratio("MemTotal: 0 kB\n"), None);
    }

    #[test]
    fn this_machine_has_a_sample() {
        let sample = sample(Path::new("/")).expect("/proc and / are readable");
        assert!((0.0..=1.0).contains(&sample.memory_used_ratio));
        assert!((0.0..=1.0).contains(&sample.disk_used_ratio));
        assert!(sample.load.iter().all(|load| *load >= 0.0));
    }
}
