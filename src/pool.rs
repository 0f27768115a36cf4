//! The hook through which a profiler (docs/glossary.md#profiler) steers pools of warm and cold instances.
//!
//! The profiler (or an operator) writes one warm-instance target per pool into a small
//! TOML file; `plan --pool-targets FILE` feeds it to the optimiser, which then trades
//! starting and stopping warm instances against everything else on their hosts. Without
//! the file, pools keep their counts and only their capacity use is planned around.

use crate::file::{key_line, toml_error};
use crate::fleet::Fleet;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Errors reading a pool-targets file.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Warm-instance targets by pool id, e.g. `web = 3`.
pub fn read_targets(path: &Path, fleet: &Fleet) -> Result<BTreeMap<String, u32>, PoolError> {
    let text = crate::file::read_text(path).map_err(|source| PoolError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_targets(path, &text, fleet)
}

/// Parses targets; every pool named must exist in `fleet`.
pub fn parse_targets(
    path: &Path,
    text: &str,
    fleet: &Fleet,
) -> Result<BTreeMap<String, u32>, PoolError> {
    let invalid = |line, message| PoolError::Invalid {
        path: path.to_owned(),
        line,
        message,
    };
    let targets: BTreeMap<String, u32> = toml::from_str(text).map_err(|e| {
        let (line, message) = toml_error(text, &e);
        invalid(line, message)
    })?;
    let line_of_key = |id: &str| key_line(text, id).unwrap_or(1);
    for (id, &target) in &targets {
        let Some(pool) = fleet.pools.iter().find(|p| &p.id == id) else {
            return Err(invalid(
                line_of_key(id),
                format!("unknown pool `{id}` (not in the fleet)"),
            ));
        };
        let size = u64::from(pool.warm) + u64::from(pool.cold);
        if u64::from(target) > size {
            return Err(invalid(
                line_of_key(id),
                format!("pool `{id}` has {size} instances (warm and cold); a target of {target} cannot be met"),
            ));
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> Fleet {
        let text = r#"
[[host]]
id = "h0"
cell = "c0"
cpu = 8.0
mem = 8192.0
net = 1000.0

[[pool]]
id = "web"
host = "h0"
warm = 1
cold = 3
cpu = 1.0
mem = 1024.0
net = 10.0
"#;
        Fleet::parse(Path::new("fleet.toml"), text).unwrap()
    }

    #[test]
    fn reads_targets_and_names_bad_lines() {
        let path = Path::new("targets.toml");
        let t = parse_targets(path, "# from the profiler\nweb = 3\n", &fleet()).unwrap();
        assert_eq!(t["web"], 3);
        let e = parse_targets(path, "web = 3\nbatch = 1\n", &fleet())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "targets.toml:2: unknown pool `batch` (not in the fleet)");
        let e = parse_targets(path, "\nweb = -1\n", &fleet())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("targets.toml:2: "), "{e}");
    }
}
