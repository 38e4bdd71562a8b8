//! Quantities as every role writes them for people, so one fact reads the same in a watcher
//! message, a plan and a report.

/// Bytes for people: `256 MiB`, `1.5 GiB`, `512 KiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value.fract() == 0.0 {
        format!("{} {}", value as u64, UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Bytes as `docker update --memory` takes them, for commands to copy: `512m`, `2g`.
pub fn docker_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= 1024 * MIB && bytes.is_multiple_of(1024 * MIB) {
        format!("{}g", bytes / (1024 * MIB))
    } else {
        format!("{}m", bytes.div_ceil(MIB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(268_435_456), "256 MiB");
        assert_eq!(human_bytes(16 * 1024 * 1024), "16 MiB");
        assert_eq!(human_bytes(3 * 512 * 1024 * 1024), "1.5 GiB");
        assert_eq!(human_bytes(1000), "1000 B");
    }

    #[test]
    fn docker_sizes_read_like_docker_flags() {
        assert_eq!(docker_bytes(536_870_912), "512m");
        assert_eq!(docker_bytes(16 * 1024 * 1024), "16m");
        assert_eq!(docker_bytes(2 * 1024 * 1024 * 1024), "2g");
    }
}
