//! Text formats of the command line: `ls -l` lines, permission strings,
//! dates and sizes.

use crate::FileStatus;

/// `drwxr-xr-x` / `-rw-r--r--` for a status.
pub(crate) fn permission_string(is_dir: bool, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(if is_dir { 'd' } else { '-' });
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let set = mode & bit != 0;
        let ch = if i == 8 && mode & 0o1000 != 0 {
            if set {
                't'
            } else {
                'T'
            }
        } else if set {
            *c
        } else {
            '-'
        };
        s.push(ch);
    }
    s
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) to days since 1970-01-01, the inverse of
/// [`civil_from_days`] (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM` (UTC) for milliseconds since the epoch.
pub(crate) fn date_minutes(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60
    )
}

/// `YYYY-MM-DD HH:MM:SS.mmm UTC` for milliseconds since the epoch.
pub(crate) fn date_full(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}.{:03} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// A byte count in binary units (`1.5 GiB`).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    // 1023.96 KiB prints as 1.0 MiB, not 1024.0 KiB.
    while v >= 1023.95 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `ls -l` lines in the shape of `hdfs dfs -ls`, columns aligned over the
/// whole listing:
/// `drwxr-xr-x   - alice staff          0 2026-11-22 10:00 /data`.
pub(crate) fn long_lines(entries: &[FileStatus]) -> Vec<String> {
    let repl = |s: &FileStatus| {
        if s.is_dir() {
            "-".to_string()
        } else {
            s.replication.to_string()
        }
    };
    let w_repl = entries
        .iter()
        .map(|s| repl(s).len())
        .max()
        .unwrap_or(1)
        .max(3);
    let w_owner = entries.iter().map(|s| s.owner.len()).max().unwrap_or(0);
    let w_group = entries.iter().map(|s| s.group.len()).max().unwrap_or(0);
    let w_len = entries
        .iter()
        .map(|s| s.length.to_string().len())
        .max()
        .unwrap_or(1);
    entries
        .iter()
        .map(|s| {
            format!(
                "{} {:>w_repl$} {:<w_owner$} {:<w_group$} {:>w_len$} {} {}",
                permission_string(s.is_dir(), s.mode),
                repl(s),
                s.owner,
                s.group,
                s.length,
                date_minutes(s.mtime),
                s.path,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FileType;

    #[test]
    fn permissions() {
        assert_eq!(permission_string(true, 0o755), "drwxr-xr-x");
        assert_eq!(permission_string(false, 0o644), "-rw-r--r--");
        assert_eq!(permission_string(true, 0o1777), "drwxrwxrwt");
        assert_eq!(permission_string(false, 0), "----------");
    }

    #[test]
    fn dates() {
        assert_eq!(date_minutes(0), "1970-01-01 00:00");
        // 2026-11-22 10:00:00 UTC
        assert_eq!(date_minutes(1_795_341_600_000), "2026-11-22 10:00");
        assert_eq!(date_full(951_782_400_123), "2000-02-29 00:00:00.123 UTC");
        for days in [-800_000, -1, 0, 59, 11_016, 20_414, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(human_size(10), "10 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
        assert_eq!(human_size((1 << 20) - 1), "1.0 MiB");
        assert_eq!(human_size(1023), "1023 B");
    }

    #[test]
    fn ls_long_is_aligned_like_hdfs() {
        let dir = FileStatus {
            path: "/data".into(),
            file_type: FileType::Dir,
            length: 0,
            replication: 0,
            block_size: 0,
            owner: "alice".into(),
            group: "staff".into(),
            mode: 0o755,
            mtime: 1_795_341_600_000,
            atime: 0,
            inode: 2,
            under_construction: false,
        };
        let file = FileStatus {
            path: "/f".into(),
            file_type: FileType::File,
            length: 12345,
            replication: 3,
            mode: 0o644,
            owner: "bob".into(),
            ..dir.clone()
        };
        let lines = long_lines(&[dir, file]);
        assert_eq!(
            lines[0],
            "drwxr-xr-x   - alice staff     0 2026-11-22 10:00 /data"
        );
        assert_eq!(
            lines[1],
            "-rw-r--r--   3 bob   staff 12345 2026-11-22 10:00 /f"
        );
    }
}
