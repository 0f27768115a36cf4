//! The `exec` backend: operator-provided commands, one per kind of change.
//!
//! Templates come from a TOML file and are split into argv at whitespace, then
//! each `{placeholder}` word part is substituted; nothing passes through a
//! shell, so an instance id can never inject a command. Every command has a
//! timeout and a non-zero exit fails the op. An optional `query` command prints
//! the current value, which lets `apply --resume` tell whether an interrupted
//! op took effect; without one an interrupted op is reported as in doubt.

use super::{classify, Backend, BackendError, Context, Effect, Op};
use crate::file::{line_of, parse_toml, FileError};
use crate::resource::Resource;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use toml::Spanned;

const PLACEHOLDERS: [&str; 9] = [
    "instance",
    "pool",
    "resource",
    "from",
    "to",
    "from_host",
    "to_host",
    "action",
    "plan",
];

/// One kind of change: the command that makes it and, optionally, the one that reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Template {
    apply: Spanned<Argv>,
    #[serde(default)]
    query: Option<Spanned<Argv>>,
}

/// A command: a string split at whitespace, or an array of words (for words with spaces).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Argv {
    Line(String),
    Words(Vec<String>),
}

impl Argv {
    fn words(&self) -> Vec<&str> {
        match self {
            Argv::Line(s) => s.split_whitespace().collect(),
            Argv::Words(w) => w.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default = "default_timeout")]
    timeout_secs: f64,
    #[serde(default)]
    resize: BTreeMap<Resource, Template>,
    #[serde(default)]
    migrate: Option<Template>,
    /// Starts or stops a pool's warm instances: `{pool}`, `{from}`, `{to}`.
    #[serde(default)]
    pool: Option<Template>,
}

fn default_timeout() -> f64 {
    60.0
}

/// Command templates read from a file.
#[derive(Debug, Clone)]
pub struct Exec {
    path: PathBuf,
    /// The file's text, for the line of a template's problem.
    text: String,
    file: File,
}

impl Exec {
    /// Reads and checks a template file.
    pub fn read(path: &Path) -> Result<Exec, BackendError> {
        let text = crate::file::read(path)?;
        let config =
            |line, message: String| BackendError::from(FileError::invalid(path, line, message));
        let file: File = parse_toml(path, &text)?;
        if !(file.timeout_secs > 0.0 && file.timeout_secs <= 86_400.0) {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("timeout_secs"))
                .map_or(0, |n| n + 1);
            return Err(config(
                line,
                format!(
                    "timeout_secs = {} must be more than 0 and at most 86400 (a day)",
                    file.timeout_secs
                ),
            ));
        }
        if file.resize.is_empty() && file.migrate.is_none() && file.pool.is_none() {
            return Err(config(
                1,
                "no templates: give at least one of [resize.cpu], [resize.mem], [resize.net], [migrate] and [pool]".into(),
            ));
        }
        let templates = file.resize.values().chain(&file.migrate).chain(&file.pool);
        for t in templates {
            for command in std::iter::once(&t.apply).chain(&t.query) {
                let line = line_of(&text, command.span().start);
                check(&command.get_ref().words()).map_err(|m| config(line, m))?;
            }
        }
        Ok(Exec {
            path: path.to_owned(),
            text,
            file,
        })
    }

    fn template(&self, op: &Op) -> Result<&Template, BackendError> {
        let (found, what) = match op {
            Op::Resize { resource, .. } => (
                self.file.resize.get(resource),
                format!("[resize.{resource}]"),
            ),
            Op::Migrate { .. } => (self.file.migrate.as_ref(), "[migrate]".into()),
            Op::Pool { .. } => (self.file.pool.as_ref(), "[pool]".into()),
        };
        found.ok_or_else(|| {
            BackendError::Failed(format!(
                "{}: no {what} template, which the plan needs",
                self.path.display()
            ))
        })
    }

    /// Runs one command; its stdout on success.
    fn run(&self, template: &Argv, op: &Op, cx: Context) -> Result<String, BackendError> {
        let argv = expand(template, op, cx);
        let shown = argv.join(" ");
        let failed = |m: String| BackendError::Failed(format!("`{shown}`: {m}"));
        let mut command = Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        die_with_parent(&mut command);
        let mut child = command.spawn().map_err(|e| failed(e.to_string()))?;
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let deadline = Instant::now() + Duration::from_secs_f64(self.file.timeout_secs);
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| failed(e.to_string()))? {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!(
                    "timed out after {} s",
                    self.file.timeout_secs
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let (out, err) = (
            out.join().unwrap_or_default(),
            err.join().unwrap_or_default(),
        );
        if !status.success() {
            return Err(failed(format!("{status}: {}", err.trim())));
        }
        Ok(out)
    }
}

/// Makes the kernel kill a command if the apply dies, so an interrupted apply leaves no
/// command running behind the one that resumes it.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() as u32 != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
}

/// Elsewhere a killed apply's command runs to its end; `--resume` then observes its effect.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

/// A command has a program, and every `{name}` in it (lowercase letters and `_`, so JSON
/// braces stay literal) is a known placeholder.
fn check(words: &[&str]) -> Result<(), String> {
    if words.is_empty() {
        return Err("empty command".into());
    }
    for word in words {
        let mut rest = *word;
        while let Some(start) = rest.find('{') {
            let Some(len) = rest[start + 1..].find('}') else {
                break;
            };
            let name = &rest[start + 1..start + 1 + len];
            if name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && !PLACEHOLDERS.contains(&name)
            {
                let m = format!(
                    "unknown placeholder `{{{name}}}` (known: {})",
                    PLACEHOLDERS.join(", ")
                );
                return Err(m);
            }
            rest = &rest[start + 1..];
        }
    }
    Ok(())
}

/// The argv of a template for an op.
fn expand(template: &Argv, op: &Op, cx: Context) -> Vec<String> {
    let mut values: Vec<(&str, String)> =
        vec![("action", cx.action.into()), ("plan", cx.plan.into())];
    match op {
        Op::Resize {
            instance,
            resource,
            from,
            to,
        } => values.extend([
            ("instance", instance.clone()),
            ("resource", resource.name().into()),
            ("from", from.to_string()),
            ("to", to.to_string()),
        ]),
        Op::Migrate {
            instance,
            from_host,
            to_host,
        } => values.extend([
            ("instance", instance.clone()),
            ("from_host", from_host.clone()),
            ("to_host", to_host.clone()),
        ]),
        Op::Pool { pool, from, to } => values.extend([
            ("pool", pool.clone()),
            ("from", from.to_string()),
            ("to", to.to_string()),
        ]),
    }
    template
        .words()
        .into_iter()
        .map(|word| substitute(word, &values))
        .collect()
}

/// `word` with each `{name}` of `values` replaced, in one pass over the template: a
/// substituted value is never searched again, so an id holding `{to}` stays as it is.
fn substitute(word: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let known = after.find('}').and_then(|len| {
            let name = &after[..len];
            values
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (v, len))
        });
        match known {
            Some((value, len)) => {
                out.push_str(value);
                rest = &after[len + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `program` names an executable file, as `Command` would find it: a path when it
/// has a `/`, else a name looked up in `PATH`.
fn runnable(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return executable(Path::new(program));
    }
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| executable(&dir.join(program)))
    })
}

impl Backend for Exec {
    fn check(&self, ops: &[Op]) -> Result<(), BackendError> {
        let mut seen = std::collections::HashSet::new();
        for op in ops {
            let t = self.template(op)?;
            for command in std::iter::once(&t.apply).chain(&t.query) {
                let program = command.get_ref().words()[0];
                if program.contains('{') || !seen.insert(program) {
                    continue;
                }
                if !runnable(program) {
                    return Err(FileError::Invalid {
                        path: self.path.clone(),
                        line: line_of(&self.text, command.span().start),
                        message: format!(
                            "program `{program}` is not an executable file{}",
                            if program.contains('/') {
                                ""
                            } else {
                                " on PATH"
                            }
                        ),
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, op: &Op, cx: Context) -> Result<(), BackendError> {
        let t = self.template(op)?.apply.get_ref().clone();
        self.run(&t, op, cx).map(|_| ())
    }

    fn observe(&mut self, op: &Op, cx: Context) -> Result<Effect, BackendError> {
        let Some(query) = self
            .template(op)?
            .query
            .as_ref()
            .map(|q| q.get_ref().clone())
        else {
            return Ok(Effect::Unknown(format!(
                "{} has no query command to tell whether it took effect",
                self.path.display()
            )));
        };
        let seen = self.run(&query, op, cx)?;
        let seen = seen.trim();
        Ok(match op {
            Op::Resize {
                instance,
                resource,
                from,
                to,
            } => match seen.parse::<f64>() {
                Ok(v) => classify(v, *from, *to, 1e-6, &format!("{resource} of `{instance}`")),
                Err(_) => Effect::Unknown(format!("query printed `{seen}`, not a number")),
            },
            Op::Migrate {
                from_host, to_host, ..
            } if seen == to_host => Effect::Applied,
            Op::Migrate { from_host, .. } if seen == from_host => Effect::NotApplied,
            Op::Migrate { .. } => Effect::Unknown(format!("query printed host `{seen}`")),
            Op::Pool { pool, from, to } => match seen.parse::<u32>() {
                Ok(n) => classify(
                    f64::from(n),
                    f64::from(*from),
                    f64::from(*to),
                    0.0,
                    &format!("warm count of pool `{pool}`"),
                ),
                Err(_) => Effect::Unknown(format!("query printed `{seen}`, not a count")),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("exec.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn templates_expand_to_argv_without_a_shell() {
        let op = Op::Resize {
            instance: "vm; rm -rf /".into(),
            resource: Resource::Cpu,
            from: 1.0,
            to: 2.5,
        };
        let cx = Context {
            plan: "p1",
            action: "a01",
        };
        let line = Argv::Line("virsh setvcpus {instance} {to} --live".into());
        assert_eq!(
            expand(&line, &op, cx),
            ["virsh", "setvcpus", "vm; rm -rf /", "2.5", "--live"]
        );
        let json = r#"{"spec":{"cpu":"{to}"}}"#;
        let words = Argv::Words(vec![
            "kubectl".into(),
            "patch".into(),
            "{instance}".into(),
            json.into(),
        ]);
        assert_eq!(expand(&words, &op, cx)[3], r#"{"spec":{"cpu":"2.5"}}"#);
        assert!(check(&words.words()).is_ok());
    }

    #[test]
    fn bad_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "timeout_secs = 1\n[resize.cpu]\napply = \"echo {instanse}\"\n",
        );
        let e = Exec::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("exec.toml:3: unknown placeholder `{instanse}`"),
            "{e}"
        );
        let p = write(dir.path(), "[resize.disk]\napply = \"true\"\n");
        let e = Exec::read(&p).unwrap_err().to_string();
        assert!(e.contains("exec.toml:1:"), "{e}");
    }

    #[test]
    fn non_zero_exit_and_timeout_fail_the_op() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "timeout_secs = 0.3\n[resize.cpu]\napply = [\"sh\", \"-c\", \"exit 3\"]\n[resize.mem]\napply = \"sleep 5\"\nquery = \"echo {to}\"\n",
        );
        let mut b = Exec::read(&p).unwrap();
        let cx = Context {
            plan: "p",
            action: "a",
        };
        let cpu = Op::Resize {
            instance: "i".into(),
            resource: Resource::Cpu,
            from: 1.0,
            to: 2.0,
        };
        let e = b.apply(&cpu, cx).unwrap_err().to_string();
        assert!(e.contains("exit status: 3"), "{e}");
        let mem = Op::Resize {
            instance: "i".into(),
            resource: Resource::Mem,
            from: 1.0,
            to: 2.0,
        };
        let start = Instant::now();
        let e = b.apply(&mem, cx).unwrap_err().to_string();
        assert!(e.contains("timed out after 0.3 s"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(4));
        assert_eq!(b.observe(&mem, cx).unwrap(), Effect::Applied);
        assert!(matches!(b.observe(&cpu, cx).unwrap(), Effect::Unknown(_)));
    }

    #[test]
    fn the_documented_example_is_valid() {
        let docs = include_str!("../../../docs/formats.md");
        let section = &docs[docs.find("## Exec backend templates").unwrap()..];
        let start = section.find("```toml\n").unwrap() + 8;
        let example = &section[start..start + section[start..].find("```").unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let b = Exec::read(&write(dir.path(), example)).unwrap();
        assert_eq!(b.file.resize.len(), 3);
        assert!(b.file.migrate.is_some() && b.file.pool.is_some());
    }

    #[test]
    fn pool_ops_fill_their_placeholders_and_read_the_count_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "[pool]\napply = \"test {pool} = web\"\nquery = \"echo 3\"\n",
        );
        let mut b = Exec::read(&p).unwrap();
        let cx = Context {
            plan: "p",
            action: "a01",
        };
        let start = Op::Pool {
            pool: "web".into(),
            from: 1,
            to: 3,
        };
        b.apply(&start, cx).unwrap();
        assert_eq!(b.observe(&start, cx).unwrap(), Effect::Applied);
        assert_eq!(b.observe(&start.inverse(), cx).unwrap(), Effect::NotApplied);
        let other = Op::Pool {
            pool: "batch".into(),
            from: 1,
            to: 3,
        };
        assert!(b.apply(&other, cx).is_err(), "`test batch = web` exits 1");
    }

    #[test]
    fn placeholders_are_substituted_once_never_inside_values() {
        let values = [("instance", "id{to}".to_owned()), ("to", "2.75".to_owned())];
        assert_eq!(
            substitute("--name={instance} --cpu={to} {\"k\":{to}}", &values),
            "--name=id{to} --cpu=2.75 {\"k\":2.75}"
        );
        assert_eq!(substitute("{unknown} {", &values), "{unknown} {");
    }
}
