//! Helpers shared by the bench binaries: `--flag value` parsing and the
//! process's peak memory.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};

/// Parses `--name value` pairs, accepting only `known` names (`--bench`,
/// which `cargo bench` appends, is ignored).
pub fn flags(known: &[&str]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--bench" {
            continue;
        }
        let Some(name) = flag.strip_prefix("--").filter(|n| known.contains(n)) else {
            bail!("unknown argument {flag} (expected one of --{})", known.join(", --"));
        };
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// Peak resident memory of this process (VmHWM), in KiB; 0 if unknown.
pub fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
