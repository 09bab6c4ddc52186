use super::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/bash\n";

fn facts(uid: u32, exe: &str, cgroup: Option<&str>) -> TargetFacts {
    TargetFacts {
        pid: 42,
        uids: [uid; 4],
        exe: exe.into(),
        cgroup: cgroup.map(Into::into),
    }
}

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::parse(text, Path::new("/etc/gopeek/policy.toml"), PASSWD)
}

#[test]
fn default_policy_refuses_root_and_hides_other_users_memory() {
    let p = Policy {
        source: None,
        rules: vec![],
    };
    let e = p.decide(&facts(0, "/usr/bin/app", None), 1000).unwrap_err();
    assert!(e.to_string().contains("it runs as root"), "{e}");
    let mut f = facts(33, "/usr/bin/app", None);
    f.uids[2] = 0; // saved uid root counts as root-owned
    assert!(p.decide(&f, 1000).is_err());
    let d = p.decide(&facts(33, "/usr/bin/app", None), 1000).unwrap();
    assert!(!d.show_memory);
    let d = p.decide(&facts(1000, "/usr/bin/app", None), 1000).unwrap();
    assert!(d.show_memory);
    // Profiling, like memory, only of the invoking user's own processes.
    assert!(d.profile);
    assert!(
        !p.decide(&facts(33, "/usr/bin/app", None), 1000)
            .unwrap()
            .profile
    );
}

#[test]
fn profiling_needs_its_own_key() {
    let p = parse(
        r#"
        [[allow]]
        users = ["www-data"]
        show_memory = true

        [[allow]]
        users = ["alice"]
        profile = true
        "#,
    )
    .unwrap();
    let d = p.decide(&facts(33, "/usr/bin/x", None), 1000).unwrap();
    assert!(d.show_memory && !d.profile, "{d:?}");
    let d = p.decide(&facts(1000, "/usr/bin/x", None), 1000).unwrap();
    assert!(!d.show_memory && d.profile, "{d:?}");
    // A typo is an error, not a silent `false`.
    assert!(parse("[[allow]]\nusers = [33]\nprofiling = true\n").is_err());
    assert!(parse("[[allow]]\nusers = [33]\nprofile = \"yes\"\n").is_err());
}

#[test]
fn rules_match_users_exe_units_and_cgroups() {
    let p = parse(
        r#"
        [[allow]]
        users = ["www-data", 1234]
        show_memory = true

        [[allow]]
        users = ["root"]
        units = ["api.service"]
        exe = ["/usr/local/bin/api"]

        [[allow]]
        exe = ["/opt/app/"]

        [[allow]]
        cgroups = ["/system.slice/batch.slice"]
        "#,
    )
    .unwrap();
    let d = p.decide(&facts(33, "/usr/bin/x", None), 1000).unwrap();
    assert_eq!(
        d,
        Decision {
            show_memory: true,
            profile: false,
            reason: "rule 1 of /etc/gopeek/policy.toml".into()
        }
    );
    assert!(p.decide(&facts(1234, "/usr/bin/x", None), 1000).is_ok());
    // root: only rule 2, and only with both its unit and its exe.
    let api = facts(0, "/usr/local/bin/api", Some("/system.slice/api.service"));
    let d = p.decide(&api, 1000).unwrap();
    assert_eq!(d.reason, "rule 2 of /etc/gopeek/policy.toml");
    assert!(!d.show_memory);
    assert!(p
        .decide(
            &facts(0, "/usr/local/bin/api", Some("/system.slice/other.service")),
            1000
        )
        .is_err());
    assert!(p
        .decide(
            &facts(0, "/opt/app/bin", Some("/system.slice/api.service")),
            1000
        )
        .is_err());
    // exe prefix rule, but never for root and never for a deleted file.
    assert!(p
        .decide(&facts(1000, "/opt/app/bin/srv", None), 1000)
        .is_ok());
    assert!(p.decide(&facts(0, "/opt/app/bin/srv", None), 1000).is_err());
    assert!(p
        .decide(&facts(1000, "/opt/app/bin/srv (deleted)", None), 1000)
        .is_err());
    assert!(p
        .decide(&facts(1000, "/opt/application", None), 1000)
        .is_err());
    // cgroup subtree, on component boundaries.
    let cg = |c| facts(1000, "/usr/bin/x", Some(c));
    assert!(p.decide(&cg("/system.slice/batch.slice"), 1).is_ok());
    assert!(p
        .decide(&cg("/system.slice/batch.slice/job.service"), 1)
        .is_ok());
    let e = p.decide(&cg("/system.slice/batch.slicex"), 1).unwrap_err();
    assert!(e.to_string().contains("no [[allow]] rule"), "{e}");
    let e = p.decide(&facts(0, "/usr/bin/x", None), 1).unwrap_err();
    assert!(e.to_string().contains("users = [\"root\"]"), "{e}");
}

#[test]
fn malformed_policies_are_errors_with_a_location() {
    for (text, needle) in [
        ("[[allow]\nusers = [1]", "line 1"),
        ("[[allow]]\nuser = [\"alice\"]", "unknown field `user`"),
        (
            "[[allow]]\nusers = [\"nobody-here\"]",
            "unknown user \"nobody-here\"",
        ),
        ("[[allow]]\nshow_memory = true", "names no users"),
        ("[[allow]]\nexe = [\"bin/app\"]", "absolute"),
        (
            "[[allow]]\ncgroups = [\"system.slice\"]",
            "must start with /",
        ),
        ("[[allow]]\nunits = [\"a/b\"]", "unit name"),
        ("[[allow]]\nusers = [-1]", "line 2"),
        ("allow = 3", "invalid type"),
    ] {
        let e = parse(text).unwrap_err();
        assert!(matches!(e, PolicyError::Malformed { .. }), "{text}: {e}");
        let m = e.to_string();
        assert!(
            m.starts_with("malformed policy /etc/gopeek/policy.toml: "),
            "{m}"
        );
        assert!(m.contains(needle), "{text}: {m}");
    }
    // An empty file is a valid policy that allows nothing.
    let p = parse("").unwrap();
    assert!(p.decide(&facts(1000, "/x", None), 1000).is_err());
}

#[test]
fn unsafe_files_and_directories_are_named() {
    let reg = libc::S_IFREG;
    let dir = libc::S_IFDIR;
    assert_eq!(insecure_reason(0, reg | 0o644, true, "the file"), None);
    assert_eq!(insecure_reason(0, dir | 0o755, false, "d"), None);
    assert_eq!(
        insecure_reason(0, reg | 0o666, true, "the file").unwrap(),
        "the file is writable by others (mode 0666)"
    );
    assert_eq!(
        insecure_reason(0, reg | 0o664, true, "the file").unwrap(),
        "the file is writable by its group (mode 0664)"
    );
    assert!(insecure_reason(1000, reg | 0o644, true, "the file")
        .unwrap()
        .contains("owned by uid 1000"));
    assert!(
        insecure_reason(0, dir | 0o1777, false, "the directory /tmp")
            .unwrap()
            .contains("writable by others")
    );
    assert!(insecure_reason(0, libc::S_IFIFO | 0o644, true, "the file").is_some());
}

#[test]
fn cgroup_and_unit_parsing() {
    use procfs::FromBufRead;
    let cgroup_path = |text: &str| {
        ProcessCGroups::from_buf_read(text.as_bytes())
            .ok()
            .and_then(|c| super::cgroup_path(&c))
    };
    assert_eq!(
        cgroup_path("0::/system.slice/api.service\n").as_deref(),
        Some("/system.slice/api.service")
    );
    assert_eq!(
        cgroup_path("12:cpu:/x\n1:name=systemd:/system.slice/a.service\n").as_deref(),
        Some("/system.slice/a.service")
    );
    // A v1 cgroup whose *name* contains ":name=systemd:" is not the
    // systemd hierarchy.
    assert_eq!(
        cgroup_path("4:memory:/x:name=systemd:/system.slice/b.slice\n1:name=systemd:/user.slice\n")
            .as_deref(),
        Some("/user.slice")
    );
    assert_eq!(cgroup_path("garbage"), None);
    assert_eq!(
        unit_of("/user.slice/user-1000.slice/user@1000.service/app.slice/web.service"),
        Some("web.service")
    );
    assert_eq!(
        unit_of("/system.slice/api.service/sub"),
        Some("api.service")
    );
    assert_eq!(unit_of("/"), None);
}

#[test]
fn facts_of_a_process_whose_name_is_not_utf8() {
    // A non-ASCII name cut at 15 bytes, inside a character.
    let mut sh = std::process::Command::new("/bin/sh")
        .args([
            "-c",
            r"printf '\303\251\303\251\303\251\303\251\303\251\303\251\303\251\303' > /proc/$$/comm; echo; read _",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sh.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let pid = sh.id() as i32;
    let raw = std::fs::read(format!("/proc/{pid}/status")).unwrap();
    assert!(std::str::from_utf8(&raw).is_err(), "the name was not set");
    let facts = TargetFacts::read(pid);
    drop(sh.stdin.take());
    sh.wait().unwrap();
    let facts = facts.unwrap();
    assert_eq!(facts.pid, pid);
    // SAFETY: geteuid has no preconditions and cannot fail.
    assert_eq!(facts.euid(), unsafe { libc::geteuid() });
}

#[test]
fn load_refuses_symlinks_and_writable_files() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("policy.toml");
    // Missing: the built-in default.
    assert!(Policy::load(&p, false).unwrap().source.is_none());
    std::fs::write(&p, "[[allow]]\nusers = [0]\n").unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let owner_ok = unsafe { libc::geteuid() } == 0;
    let e = Policy::load(&p, false).unwrap_err().to_string();
    assert!(
        e.contains("writable by others") || (!owner_ok && e.contains("not root")),
        "{e}"
    );
    let link = d.path().join("link.toml");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    let e = Policy::load(&link, false).unwrap_err().to_string();
    assert!(e.contains("symbolic link"), "{e}");
    if owner_ok {
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        assert_eq!(Policy::load(&p, false).unwrap().rules.len(), 1);
        // A temporary directory is not a safe place for a policy.
        let e = Policy::load(&p, true).unwrap_err().to_string();
        assert!(e.contains("writable by others"), "{e}");
    }
}
