//! Backend integration tests: the `cgroup` backend through the real binary on a fake
//! cgroup v2 tree, which exercises the file formats, detection and read-back. The real
//! cgroups are tested in tests/cgroups.rs.

use crate::util::{forge, model_without_percentage_budget, text, workspace, LATER, MIB, NOW};
use chameleon::executor::backend::Cgroup;
use chameleon::fleet::Fleet;
use chameleon::plan::Kind;
use chameleon::resource::Resource;
use std::path::Path;

/// A fake cgroup v2 tree holding the fleet's allocations.
fn fake_tree(root: &Path, fleet: &Fleet) {
    std::fs::write(root.join("cgroup.controllers"), "cpu memory").unwrap();
    std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    for i in &fleet.instances {
        let g = root.join(&i.id);
        std::fs::create_dir(&g).unwrap();
        let quota = (i.cpu.alloc * 100_000.0).round() as i64;
        std::fs::write(g.join("cpu.max"), format!("{quota} 100000")).unwrap();
        std::fs::write(
            g.join("memory.max"),
            format!("{}", (i.mem.alloc * MIB) as i64),
        )
        .unwrap();
        std::fs::write(g.join("memory.current"), "1048576").unwrap();
    }
}

fn tree(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for g in std::fs::read_dir(root).unwrap() {
        let g = g.unwrap().path();
        for f in ["cpu.max", "memory.max"] {
            if let Ok(t) = std::fs::read_to_string(g.join(f)) {
                out.push((
                    format!("{}/{f}", g.file_name().unwrap().to_string_lossy()),
                    t,
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn cgroup_backend_through_the_binary_on_a_fake_v2_tree() {
    let dir = workspace();
    // No percentage budget, so the plan includes the migration cgroups cannot do.
    let model = model_without_percentage_budget();
    std::fs::write(dir.path().join("model.toml"), model).unwrap();
    let bin = || {
        let mut c = crate::util::bin();
        c.current_dir(dir.path());
        c
    };
    let o = bin()
        .args([
            "plan",
            "--fleet",
            "fleet.toml",
            "--telemetry",
            "telemetry.csv",
            "--model",
            "model.toml",
            "--now",
            NOW,
            "--out-dir",
            ".",
        ])
        .output()
        .unwrap();
    let plan_path = dir.path().join(String::from_utf8_lossy(&o.stdout).trim());
    let fleet = Fleet::read(&dir.path().join("fleet.toml")).unwrap();
    let cg = dir.path().join("cg");
    std::fs::create_dir(&cg).unwrap();
    fake_tree(&cg, &fleet);
    let before = tree(&cg);
    let apply = |extra: &[&str]| {
        bin()
            .args([
                "apply",
                plan_path.to_str().unwrap(),
                "--fleet",
                "fleet.toml",
                "--now",
                LATER,
            ])
            .args(["--backend", "cgroup", "--cgroup-root", cg.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    // The full plan has net resizes and a migration, which cgroups cannot do: rolled back.
    let o = apply(&["--on-failure", "rollback"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("the cgroup backend cannot"),
        "{}",
        text(&o)
    );
    assert_eq!(tree(&cg), before);
    assert_eq!(Fleet::read(&dir.path().join("fleet.toml")).unwrap(), fleet);

    // Skip those: the cpu and mem changes land in the tree and match the fleet file.
    forge(&plan_path, |plan| {
        plan.plan.id += "-cg";
        for a in &mut plan.actions {
            a.skip = a.kind() == Kind::Migrate || a.resource() == Some(Resource::Net);
        }
    });
    let o = apply(&[]);
    assert!(o.status.success(), "{}", text(&o));
    let after = Fleet::read(&dir.path().join("fleet.toml")).unwrap();
    assert_ne!(after, fleet);
    let b = Cgroup::detect(&cg).unwrap();
    for i in &after.instances {
        assert!(
            (b.read(&i.id, Resource::Cpu).unwrap() - i.cpu.alloc).abs() < 1e-5,
            "{}",
            i.id
        );
        assert!(
            (b.read(&i.id, Resource::Mem).unwrap() - i.mem.alloc).abs() < 1e-2,
            "{}",
            i.id
        );
    }
    assert_ne!(tree(&cg), before);
}
