//! `chameleon ledger`: the credit ledger's balances and history.

use super::*;

pub(super) fn show_ledger(
    fleet: &Path,
    ledger: Option<PathBuf>,
    instance: Option<&str>,
    sync: bool,
) -> Result<ExitCode> {
    let path = ledger.unwrap_or_else(|| Ledger::default_path(fleet));
    if sync {
        let _lock = FleetLock::acquire(fleet, Duration::ZERO)?;
        Ledger::check_settled(fleet, &path)?;
        let ledger = Ledger::open_existing(&path)?;
        let mut state = Fleet::read(fleet)?;
        let changed = ledger.sync_fleet(&mut state)?;
        state.write_atomic(fleet)?;
        eprintln!(
            "copied {changed} balances from {} into {}",
            path.display(),
            fleet.display()
        );
    }
    let ledger = Ledger::open_existing(&path)?;
    if let Some(id) = instance {
        if !ledger.accounts()?.iter().any(|a| a.instance == id) {
            anyhow::bail!("{}: no account for instance `{id}`", path.display());
        }
    }
    print!("{}", ledger.render(instance)?);
    Ok(ExitCode::SUCCESS)
}
