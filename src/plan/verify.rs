//! Verification: the only way from a plan file to a [`VerifiedPlan`] the executor accepts.

use super::{Plan, PlanError, VerifiedPlan};
use crate::file::FileError;
use crate::fleet::Fleet;
use crate::units::rfc3339;
use chrono::{DateTime, Utc};
use std::path::Path;

impl Plan {
    /// Checks digest, prior application, expiry and fleet fingerprint, in that order.
    pub fn verify(
        self,
        path: &Path,
        fleet: &Fleet,
        now: DateTime<Utc>,
    ) -> Result<VerifiedPlan, PlanError> {
        let path = path.to_owned();
        let expected = self.compute_digest();
        if expected != self.plan.digest {
            return Err(PlanError::Tampered {
                path,
                expected,
                found: self.plan.digest.clone(),
            });
        }
        if fleet.last_plan.as_deref() == Some(self.plan.id.as_str()) {
            return Err(PlanError::AlreadyApplied {
                path,
                id: self.plan.id.clone(),
            });
        }
        let time = |key: &str, value: &str| {
            DateTime::parse_from_rfc3339(value).map_err(|e| FileError::Invalid {
                path: path.clone(),
                line: 0,
                message: format!("{key}: {e}"),
            })
        };
        let created = time("created_at", &self.plan.created_at)?;
        if now < created {
            return Err(PlanError::Early {
                path,
                created_at: self.plan.created_at.clone(),
                now: rfc3339(now),
            });
        }
        if let Some((a, key)) = self.actions.iter().find_map(|a| {
            a.numbers()
                .into_iter()
                .find(|(_, v)| !v.is_finite())
                .map(|(key, _)| (a, key))
        }) {
            return Err(FileError::Invalid {
                path,
                line: 0,
                message: format!("action {}: {key} is not a finite number", a.id),
            }
            .into());
        }
        let expires = time("expires_at", &self.plan.expires_at)?;
        if now >= expires {
            return Err(PlanError::Expired {
                path,
                expires_at: self.plan.expires_at.clone(),
                now: rfc3339(now),
            });
        }
        let current = fleet.fingerprint();
        if current != self.plan.fleet_fingerprint {
            return Err(PlanError::Stale {
                path,
                planned: self.plan.fleet_fingerprint.clone(),
                current,
            });
        }
        Ok(VerifiedPlan(self))
    }
}
