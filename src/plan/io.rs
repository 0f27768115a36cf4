//! The plan file: canonical text, digest, atomic write and read.

use super::{Action, ForecastRecord, Header, Plan, PlanError};
use crate::file::{hex, parse_toml, write_atomic, FileError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

const PREAMBLE: &str =
    "# Chameleon plan. Review the actions below; set `skip = true` on any you do not want,\n\
# then run `chameleon apply <this file> --fleet <fleet.toml>`. Any other edit voids the plan.\n\n";

impl Plan {
    /// sha256 of the canonical text with `digest` cleared and every `skip` false.
    pub fn compute_digest(&self) -> String {
        self.digest_with(&self.tail_toml())
    }

    /// [`compute_digest`](Self::compute_digest), given the text of the forecasts.
    pub(super) fn digest_with(&self, tail: &str) -> String {
        let mut plan = self.plan.clone();
        plan.digest.clear();
        let mut actions = self.actions.clone();
        actions.iter_mut().for_each(|a| a.skip = false);
        let head = head_toml(&plan, &actions);
        hex(&Sha256::new()
            .chain_update(head.as_bytes())
            .chain_update(tail.as_bytes())
            .finalize())
    }

    /// The file text: a short preamble for reviewers, then the TOML.
    pub fn to_text(&self) -> String {
        let (head, tail) = (head_toml(&self.plan, &self.actions), self.tail_toml());
        format!("{PREAMBLE}{head}{tail}")
    }

    /// The TOML of the forecasts, as it ends the plan's: most of a large plan's text, so
    /// it is serialised apart from the header and actions and only once per digest.
    pub(super) fn tail_toml(&self) -> String {
        #[derive(Serialize)]
        struct Tail<'a> {
            forecast: &'a [ForecastRecord],
        }
        if self.forecasts.is_empty() {
            return String::new();
        }
        let tail = Tail {
            forecast: &self.forecasts,
        };
        format!("\n{}", toml::to_string(&tail).expect("plans serialise"))
    }

    /// Writes `<dir>/<id>.plan.toml` atomically and returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, PlanError> {
        std::fs::create_dir_all(dir).map_err(|source| FileError::io(dir, source))?;
        let path = dir.join(format!("{}.plan.toml", self.plan.id));
        write_atomic(&path, self.to_text().as_bytes())
            .map_err(|source| FileError::io(&path, source))?;
        Ok(path)
    }

    /// Reads a plan file (without verifying it).
    pub fn read(path: &Path) -> Result<Plan, PlanError> {
        let text = crate::file::read(path)?;
        let plan: Plan = parse_toml(path, &text)?;
        plan.check_references().map_err(|(id, message)| {
            let key = format!("id = \"{id}\"");
            let line = text
                .lines()
                .position(|l| l.trim() == key)
                .map_or(0, |n| n + 1);
            FileError::invalid(path, line, message)
        })?;
        Ok(plan)
    }

    /// Action ids are unique and every `depends_on` names an earlier-listed or later action.
    fn check_references(&self) -> Result<(), (String, String)> {
        let mut ids = std::collections::BTreeSet::new();
        for a in &self.actions {
            if !ids.insert(a.id.as_str()) {
                return Err((a.id.clone(), format!("duplicate action id `{}`", a.id)));
            }
        }
        for a in &self.actions {
            if let Some(d) = a
                .depends_on
                .iter()
                .find(|d| !ids.contains(d.as_str()) || **d == a.id)
            {
                return Err((
                    a.id.clone(),
                    format!("action {} depends on unknown action `{d}`", a.id),
                ));
            }
        }
        Ok(())
    }
}

/// The TOML of a plan's header and actions, as it begins the plan's.
fn head_toml(plan: &Header, actions: &[Action]) -> String {
    #[derive(Serialize)]
    struct Head<'a> {
        plan: &'a Header,
        action: &'a [Action],
    }
    toml::to_string(&Head {
        plan,
        action: actions,
    })
    .expect("plans serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan's text, serialised in two pieces, is exactly its TOML, with or without
    /// actions and forecasts.
    #[test]
    fn the_text_in_pieces_is_the_plans_toml() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/fixture.plan.toml"
        ))
        .unwrap();
        let full: Plan = toml::from_str(&text).unwrap();
        assert!(!full.actions.is_empty() && !full.forecasts.is_empty());
        for (actions, forecasts) in [(true, true), (true, false), (false, true), (false, false)] {
            let mut plan = full.clone();
            if !actions {
                plan.actions.clear();
            }
            if !forecasts {
                plan.forecasts.clear();
            }
            let whole = toml::to_string(&plan).unwrap();
            assert_eq!(plan.to_text(), format!("{PREAMBLE}{whole}"));
            let mut canonical = plan.clone();
            canonical.plan.digest.clear();
            canonical.actions.iter_mut().for_each(|a| a.skip = false);
            let expected = hex(&Sha256::digest(
                toml::to_string(&canonical).unwrap().as_bytes(),
            ));
            plan.actions.iter_mut().for_each(|a| a.skip = true);
            assert_eq!(plan.compute_digest(), expected);
        }
        assert_eq!(full.compute_digest(), full.plan.digest);
    }
}
