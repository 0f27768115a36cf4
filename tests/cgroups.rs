//! The `cgroup` backend on the machine's real cgroups (v1 or v2): create a group, set and
//! read back cpu and memory limits, and refuse a memory limit below the group's usage.
//! Where groups cannot be created (no cgroup tree, not root) the test is reported as
//! ignored, with the reason, not as passed; `CHAMELEON_CGROUP_ROOT` points it elsewhere.

// The `tests` binary's helpers; this binary uses few of them.
#[allow(dead_code)]
mod util;

use chameleon::executor::backend::{Backend, Cgroup, Context, Effect, Op};
use chameleon::resource::Resource;
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use util::MIB;

fn main() {
    let args = Arguments::from_args();
    let root =
        PathBuf::from(std::env::var("CHAMELEON_CGROUP_ROOT").unwrap_or("/sys/fs/cgroup".into()));
    let test = {
        let root = root.clone();
        Trial::test("real_cgroups", move || real_cgroups(&root))
    };
    let test = match can_create_groups(&root) {
        Ok(()) => test,
        Err(why) => {
            eprintln!("real_cgroups is ignored: {why}");
            test.with_ignored_flag(true)
        }
    };
    libtest_mimic::run(&args, vec![test]).exit();
}

/// Whether this machine lets the test create groups under `root`, and why not.
fn can_create_groups(root: &Path) -> Result<(), String> {
    Cgroup::detect(root).map_err(|e| e.to_string())?;
    let v2 = root.join("cgroup.controllers").is_file();
    let parent = if v2 {
        root.to_owned()
    } else {
        root.join("cpu")
    };
    let probe = parent.join(format!("chameleon-probe-{}", std::process::id()));
    std::fs::create_dir(&probe)
        .map_err(|e| format!("cannot create a group under {}: {e}", parent.display()))?;
    std::fs::remove_dir(&probe).map_err(|e| format!("{}: {e}", probe.display()))
}

fn cx() -> Context<'static> {
    Context {
        plan: "test",
        action: "a01",
    }
}

fn resize(instance: &str, resource: Resource, from: f64, to: f64) -> Op {
    Op::Resize {
        instance: instance.into(),
        resource,
        from,
        to,
    }
}

/// Removes the test's groups even when an assertion fails.
struct Groups(Vec<PathBuf>);

impl Drop for Groups {
    fn drop(&mut self) {
        for g in &self.0 {
            let _ = std::fs::remove_dir(g);
        }
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Failed> {
    if ok {
        Ok(())
    } else {
        Err(what().into())
    }
}

fn real_cgroups(root: &Path) -> Result<(), Failed> {
    let mut b = Cgroup::detect(root)?;
    let name = format!("chameleon-test-{}", std::process::id());
    let v2 = root.join("cgroup.controllers").is_file();
    let groups = Groups(if v2 {
        vec![root.join(&name)]
    } else {
        vec![
            root.join("cpu").join(&name),
            root.join("memory").join(&name),
        ]
    });
    let cpu = resize(&name, Resource::Cpu, f64::INFINITY, 0.5);
    b.apply(&cpu, cx())?;
    check(b.read(&name, Resource::Cpu)? == 0.5, || {
        "cpu 0.5 not read back".into()
    })?;
    check(b.observe(&cpu, cx())? == Effect::Applied, || {
        "the cpu resize is not observed as applied".into()
    })?;
    let mem = resize(&name, Resource::Mem, f64::INFINITY, 256.0);
    b.apply(&mem, cx())?;
    check(b.read(&name, Resource::Mem)? == 256.0, || {
        "mem 256 not read back".into()
    })?;
    b.apply(&resize(&name, Resource::Cpu, 0.5, 1.25), cx())?;
    check(b.read(&name, Resource::Cpu)? == 1.25, || {
        "cpu 1.25 not read back".into()
    })?;

    // A process using ~64 MiB in the group: shrinking memory below that is refused.
    let memory_group = groups.0.last().unwrap();
    let script = format!(
        "echo $$ > {}; x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ready; sleep 20",
        memory_group.join("cgroup.procs").display()
    );
    let mut hog = Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(hog.stdout.take().unwrap()),
        &mut line,
    )?;
    let usage_file = memory_group.join(if v2 {
        "memory.current"
    } else {
        "memory.usage_in_bytes"
    });
    let usage: f64 = std::fs::read_to_string(&usage_file)?.trim().parse()?;
    let refused = b.apply(&resize(&name, Resource::Mem, 256.0, 8.0), cx());
    let _ = hog.kill();
    let _ = hog.wait();
    check(usage >= 32.0 * MIB, || {
        format!("the group uses {usage} bytes: the process did not move into it")
    })?;
    let e = match refused {
        Ok(()) => return Err("a memory limit below the group's usage was accepted".into()),
        Err(e) => e.to_string(),
    };
    check(e.contains("below its current usage"), || e.clone())?;
    check(b.read(&name, Resource::Mem)? == 256.0, || {
        "the refused shrink changed the limit".into()
    })?;
    drop(groups);
    Ok(())
}
