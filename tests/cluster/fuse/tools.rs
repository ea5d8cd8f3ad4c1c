//! The ordinary tools on the mount: cp, tar, rsync, dd and the shell's
//! mkdir, mv, ls, stat and rm.

use super::*;

/// `path mode mtime size` of every entry below `dir`, sorted.
fn tree_listing(dir: &Path) -> String {
    sh(&format!(
        "cd '{}' && find . -mindepth 1 -printf '%P %y %m %Ts %s\\n' | awk '{{ if ($2==\"d\") $5=\"-\"; print }}' | sort",
        dir.display()
    ))
}

#[test]
fn cp_in_and_out_of_the_mount() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    for (i, &size) in [0usize, 1, 3 * MIB + 5].iter().enumerate() {
        let local = c.local_file(&format!("cp-{size}"), size, 50 + i as u64);
        let inside = m.dir.join(format!("cp-{size}"));
        sh(&format!("cp '{}' '{}'", local.display(), inside.display()));
        assert_eq!(fs::metadata(&inside).unwrap().len(), size as u64);
        let back = c.dir.path().join(format!("back-{size}"));
        sh(&format!("cp '{}' '{}'", inside.display(), back.display()));
        assert_eq!(sha256_file(&local), sha256_file(&back), "size {size}");
        // The CLI sees what the mount wrote.
        let st = c.dfs_json(&["stat", "--json", &format!("/cp-{size}")]);
        assert_eq!(st["length"], size as u64);
    }
    // cp onto an existing file replaces it (O_TRUNC or setattr(size=0)).
    let newer = c.local_file("newer", 12345, 77);
    let target = m.dir.join(format!("cp-{}", 3 * MIB + 5));
    sh(&format!("cp '{}' '{}'", newer.display(), target.display()));
    assert_eq!(sha256_file(&newer), sha256_file(&target));
    // Shell redirection truncates too.
    sh(&format!("echo hello > '{}'", target.display()));
    assert_eq!(fs::read_to_string(&target).unwrap(), "hello\n");
}

#[test]
fn tar_extract_is_identical_with_modes_and_mtimes() {
    let c = Cluster::builder().block_size(4 * MIB as u64).start();
    let m = Mount::new(&c, &[]);
    let src = if Path::new("/usr/lib/python3").is_dir() {
        "python3"
    } else {
        ""
    };
    let tarball = c.dir.path().join("tree.tar");
    if src.is_empty() {
        sh(&format!(
            "tar -C /usr/share -chf '{}' doc",
            tarball.display()
        ));
    } else {
        sh(&format!(
            "tar -C /usr/lib -cf '{}' {src}",
            tarball.display()
        ));
    }
    let files: usize = sh(&format!("tar -tf '{}' | grep -vc '/$'", tarball.display()))
        .trim()
        .parse()
        .unwrap();
    assert!(
        files > 1000,
        "the tarball should have thousands of files ({files})"
    );
    let local = c.dir.path().join("local-x");
    fs::create_dir_all(&local).unwrap();
    sh(&format!(
        "tar -C '{}' -xf '{}'",
        local.display(),
        tarball.display()
    ));
    let remote = m.dir.join("x");
    fs::create_dir_all(&remote).unwrap();
    sh(&format!(
        "tar -C '{}' -xf '{}'",
        remote.display(),
        tarball.display()
    ));
    sh(&format!(
        "diff -r '{}' '{}'",
        local.display(),
        remote.display()
    ));
    assert_eq!(
        tree_listing(&local),
        tree_listing(&remote),
        "modes or mtimes differ"
    );
}

#[test]
fn rsync_twice_changes_nothing_the_second_time() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    let src = c.dir.path().join("rs-src");
    for d in ["a", "a/b", "c"] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    for (i, name) in ["a/one", "a/b/two", "c/three", "four"].iter().enumerate() {
        fs::write(
            src.join(name),
            random_bytes(1000 * (i + 1) + i * MIB / 2, i as u64),
        )
        .unwrap();
    }
    fs::set_permissions(src.join("a/one"), fs::Permissions::from_mode(0o600)).unwrap();
    let dst = m.dir.join("rs");
    sh(&format!(
        "rsync -a '{}/' '{}/'",
        src.display(),
        dst.display()
    ));
    sh(&format!("diff -r '{}' '{}'", src.display(), dst.display()));
    assert_eq!(tree_listing(&src), tree_listing(&dst));
    let second = sh(&format!(
        "rsync -a --itemize-changes '{}/' '{}/'",
        src.display(),
        dst.display()
    ));
    assert_eq!(
        second.trim(),
        "",
        "second rsync changed something:\n{second}"
    );
}

#[test]
fn dd_with_fsync_and_shell_tools() {
    let c = Cluster::builder().start();
    let m = Mount::new(&c, &[]);
    let src = c.local_file("dd-src", 24 * MIB, 3);
    let dst = m.dir.join("dd.bin");
    sh(&format!(
        "dd if='{}' of='{}' bs=1M conv=fsync status=none",
        src.display(),
        dst.display()
    ));
    assert_eq!(sha256_file(&src), sha256_file(&dst));
    // sha256sum through the mount agrees with the local file.
    let a = sh(&format!("sha256sum < '{}'", src.display()));
    let b = sh(&format!("sha256sum < '{}'", dst.display()));
    assert_eq!(a, b);

    // mkdir -p, mv, ls -l, stat, rm -r.
    sh(&format!("mkdir -p '{}/p/q/r'", m.dir.display()));
    sh(&format!(
        "mv '{}' '{}/p/q/r/moved.bin'",
        dst.display(),
        m.dir.display()
    ));
    let ls = sh(&format!("ls -l '{}/p/q/r'", m.dir.display()));
    assert!(
        ls.contains("moved.bin") && ls.contains(&(24 * MIB).to_string()),
        "{ls}"
    );
    let st = sh(&format!(
        "stat -c '%s %F %a' '{}/p/q/r/moved.bin'",
        m.dir.display()
    ));
    assert_eq!(st.trim(), format!("{} regular file 644", 24 * MIB));
    let st = sh(&format!("stat -c '%F' '{}/p/q'", m.dir.display()));
    assert_eq!(st.trim(), "directory");
    sh(&format!("chmod 600 '{}/p/q/r/moved.bin'", m.dir.display()));
    let meta = fs::metadata(m.dir.join("p/q/r/moved.bin")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    sh(&format!("rm -r '{}/p'", m.dir.display()));
    assert!(!m.dir.join("p").exists());
    // rmdir of a non-empty dir fails, mv over an existing file replaces it.
    fs::create_dir_all(m.dir.join("full/x")).unwrap();
    assert!(fs::remove_dir(m.dir.join("full")).is_err());
    fs::write(m.dir.join("f1"), b"one").unwrap();
    fs::write(m.dir.join("f2"), b"two").unwrap();
    fs::rename(m.dir.join("f1"), m.dir.join("f2")).unwrap();
    assert_eq!(fs::read(m.dir.join("f2")).unwrap(), b"one");
    assert!(!m.dir.join("f1").exists());
    // A path past the namenode's limit of 256 components (it sees the
    // whole path; the mount names the parent by inode) is ENAMETOOLONG,
    // as a name over 255 bytes is, never EINVAL.
    let deepest = (1..256).fold(m.dir.join("deep"), |p, _| p.join("d"));
    fs::create_dir_all(&deepest).unwrap();
    let e = fs::create_dir(deepest.join("d")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{e:?}");
    let e = fs::write(deepest.join("f"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{e:?}");
    let e = fs::create_dir(m.dir.join("n".repeat(256))).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG), "{e:?}");
}
