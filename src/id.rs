//! What an instance, host or pool id may be.
//!
//! Ids become cgroup directory names, command arguments and terminal output, so they
//! are held to a conservative rule wherever they enter (fleet, telemetry, importers): 1
//! to 128 ASCII letters, digits, `_`, `-` and `.`, starting with a letter, a digit or
//! `_`. No `/`, no `..`, no leading `-` (an option to a command), no control characters,
//! no `{` (a placeholder in an exec template).

/// The longest id accepted.
pub(crate) const MAX_LEN: usize = 128;

/// Checks `id` against the rule; the error says what is wrong with it.
pub(crate) fn check(id: &str) -> Result<(), String> {
    let shown = id.escape_default();
    if id.is_empty() || id.len() > MAX_LEN {
        return Err(format!(
            "id `{shown}` must be 1 to {MAX_LEN} characters long"
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "id `{shown}` has `{}`: ids may hold only ASCII letters, digits, `_`, `-` and `.`",
            c.escape_default()
        ));
    }
    if id.starts_with(['-', '.']) {
        return Err(format!(
            "id `{shown}` must start with a letter, a digit or `_`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_a_path_or_become_an_option_are_refused() {
        for ok in [
            "306",
            "vm_1555181",
            "ec2_cpu_utilization_77c1ca",
            "a.b-c",
            "_x",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "../system.slice",
            "../outside/vm58",
            "/abs/path",
            "..",
            ".hidden",
            "-rf",
            "id{to}",
            "tab\there",
            "é",
            &"x".repeat(129),
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check("a/b").unwrap_err().contains("has `/`"));
        assert!(check("bell\u{7}").unwrap_err().contains("bell\\u{7}"));
    }
}
