//! Where the worker's CPU goes: `perf record` attached to the worker during a drain, reported
//! as the symbols with the most samples (self time). Skipped when `perf` is not installed.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A running `perf record` on one process.
pub struct Recording {
    child: tokio::process::Child,
    data: PathBuf,
}

/// Starts sampling `pid` (user and kernel time, 499 Hz); `None` when perf cannot run here.
pub fn start(pid: u32, dir: &Path) -> Option<Recording> {
    let data = dir.join("perf.data");
    let child = tokio::process::Command::new("perf")
        .args(["record", "-F", "499", "-p", &pid.to_string(), "-o"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    Some(Recording { child, data })
}

impl Recording {
    /// Stops sampling and returns the top `n` entries as (percent of samples, where, symbol).
    pub async fn top(mut self, n: usize) -> anyhow::Result<Vec<(f64, String, String)>> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
        }
        let _ = self.child.wait().await;
        let out = tokio::process::Command::new("perf")
            .args(["report", "--stdio", "--no-children", "--sort", "dso,symbol", "-i"])
            .arg(&self.data)
            .stderr(Stdio::null())
            .output()
            .await?;
        Ok(parse(&String::from_utf8_lossy(&out.stdout), usize::MAX).into_iter().take(n).collect())
    }
}

/// The samples summed by component: the crate a symbol comes from (its first path segment),
/// or the library (`libc`, the kernel) for code outside the worker; the top `n`.
pub fn by_component(top: &[(f64, String, String)], n: usize) -> Vec<(f64, String)> {
    let mut sums: std::collections::BTreeMap<String, f64> = std::collections::BTreeMap::new();
    for (percent, dso, symbol) in top {
        let component = if dso.starts_with("tollgate") {
            let path = symbol.trim_start_matches(['<', '&']).trim_start_matches("dyn ");
            path.split("::").next().unwrap_or(path).split(' ').next().unwrap_or(path).to_string()
        } else if dso.contains("kernel") {
            "kernel".to_string()
        } else {
            dso.split(".so").next().unwrap_or(dso).to_string()
        };
        *sums.entry(component).or_default() += percent;
    }
    let mut sorted: Vec<(f64, String)> = sums.into_iter().map(|(c, p)| (p, c)).collect();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    sorted.truncate(n);
    sorted
}

/// `perf report --stdio` lines like `  12.34%  tollgate-worker  [.] some::symbol`.
fn parse(report: &str, n: usize) -> Vec<(f64, String, String)> {
    report
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let percent = parts.next()?.strip_suffix('%')?.parse().ok()?;
            let dso = parts.next()?.to_string();
            let _kind = parts.next()?;
            // `perf report` pads the line with `-` columns for fields it does not have.
            let mut symbol: Vec<&str> = parts.collect();
            while symbol.last() == Some(&"-") {
                symbol.pop();
            }
            Some((percent, dso, symbol.join(" ")))
        })
        .take(n)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_perf_report_lines() {
        let report = "# Overhead  Shared Object  Symbol\n    12.50%  tollgate-worker  [.] prost::encoding::decode - -\n     3.10%  [kernel.kallsyms]  [k] do_syscall_64 - -\n     1.00%  tollgate-worker  [.] <prost::X as Y>::merge\n";
        let top = super::parse(report, 5);
        assert_eq!(top.len(), 3);
        assert_eq!(top[0], (12.5, "tollgate-worker".into(), "prost::encoding::decode".into()));
        assert_eq!(top[1].2, "do_syscall_64");
        assert_eq!(super::by_component(&top, 5), vec![(13.5, "prost".to_string()), (3.1, "kernel".to_string())]);
    }
}
