//! Permission checks of the namespace operations, for callers who are
//! not the superuser (HDFS's FSPermissionChecker cases), and the mode bits
//! an inode keeps.

use super::*;
use crate::permission::Caller;

fn user(name: &str, groups: &[&str]) -> Caller {
    Caller {
        user: name.into(),
        groups: Arc::new(groups.iter().map(|g| g.to_string()).collect()),
        superuser: false,
    }
}

fn su() -> Caller {
    Caller::superuser()
}

async fn mkdir(h: &Harness, who: &Caller, path: &str, mode: u32, owner: &str) -> Result<()> {
    h.fs.mkdirs(
        who,
        MkdirsRequest {
            path: path.into(),
            parents: true,
            mode,
            owner: owner.into(),
            group: String::new(),
        },
    )
    .await
    .map(|_| ())
}

async fn create(h: &Harness, who: &Caller, path: &str) -> Result<FileStatus> {
    h.fs.create(
        who,
        CreateRequest {
            path: path.into(),
            client_name: format!("client-{}", who.user),
            ..Default::default()
        },
    )
    .await
}

async fn chmod(h: &Harness, who: &Caller, path: &str, mode: u32) -> Result<FileStatus> {
    h.fs.set_attr(
        who,
        SetAttrRequest {
            path: path.into(),
            mode: Some(mode),
            ..Default::default()
        },
    )
    .await
}

#[track_caller]
fn denied<T: std::fmt::Debug>(r: Result<T>, expect: &str) {
    match r {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
            assert!(e.to_string().contains(expect), "{e}\nexpected: {expect}");
        }
        Ok(v) => panic!("allowed, expected a refusal containing {expect:?}: {v:?}"),
    }
}

#[tokio::test]
async fn owners_groups_and_others_get_what_the_mode_bits_give() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let (alice, bob) = (user("alice", &["alice"]), user("bob", &["bob", "staff"]));
    mkdir(&h, &su(), "/user", 0o755, "").await.unwrap();
    mkdir(&h, &su(), "/user/alice", 0o755, "alice")
        .await
        .unwrap();
    // The superuser made /user as itself: others may pass but not write.
    denied(
        mkdir(&h, &alice, "/user/bob", 0, "").await,
        "Permission denied: user=alice, access=WRITE, inode=\"/user\":root:root:drwxr-xr-x",
    );
    // mkdir -p of what exists needs no write access.
    mkdir(&h, &bob, "/user/alice", 0, "").await.unwrap();

    let f = create(&h, &alice, "/user/alice/f").await.unwrap();
    assert_eq!((f.owner.as_str(), f.group.as_str()), ("alice", "root"));
    denied(
        create(&h, &bob, "/user/alice/g").await,
        "user=bob, access=WRITE, inode=\"/user/alice\":alice:root:drwxr-xr-x",
    );
    // Nobody creates an inode for someone else but the superuser: what
    // another creates is its own, in a group it belongs to.
    let mut as_bob = CreateRequest {
        path: "/user/alice/h".into(),
        client_name: "c-alice".into(),
        owner: "bob".into(),
        group: "staff".into(),
        ..Default::default()
    };
    let h1 = h.fs.create(&alice, as_bob.clone()).await.unwrap();
    assert_eq!((h1.owner.as_str(), h1.group.as_str()), ("alice", "root"));
    as_bob.path = "/user/alice/h2".into();
    as_bob.group = "alice".into();
    let h2 = h.fs.create(&alice, as_bob.clone()).await.unwrap();
    assert_eq!(h2.group, "alice");
    as_bob.path = "/h3".into();
    let h3 = h.fs.create(&su(), as_bob).await.unwrap();
    assert_eq!((h3.owner.as_str(), h3.group.as_str()), ("bob", "alice"));
    for f in ["/user/alice/h", "/user/alice/h2"] {
        h.fs.delete(&alice, f, false, EntryKind::Any).await.unwrap();
    }

    // Reading needs READ of the file; its status only passing through.
    let req = GetBlockLocationsRequest {
        path: "/user/alice/f".into(),
        ..Default::default()
    };
    h.fs.get_block_locations(&bob, &req, "").unwrap();
    chmod(&h, &alice, "/user/alice/f", 0o600).await.unwrap();
    denied(
        h.fs.get_block_locations(&bob, &req, ""),
        "user=bob, access=READ, inode=\"/user/alice/f\":alice:root:-rw-------",
    );
    h.fs.get_file_info(&bob, "/user/alice/f").unwrap();
    let (status, locations) =
        h.fs.located_file_info(&bob, "/user/alice/f", "", "")
            .unwrap();
    assert_eq!(status.owner, "alice");
    assert!(locations.is_none(), "locations of a file bob may not read");
    let (entries, located, _) =
        h.fs.list_located(&bob, "/user/alice", "", 0, "", "")
            .unwrap();
    assert_eq!(entries.len(), 1);
    assert!(
        located[0].status.is_none(),
        "no locations in the listing either"
    );
    assert!(h
        .fs
        .located_file_info(&alice, "/user/alice/f", "", "")
        .unwrap()
        .1
        .is_some());

    // Only the owner changes the mode; nobody but the superuser the owner.
    denied(
        chmod(&h, &bob, "/user/alice/f", 0o644).await,
        "user=bob is not the owner of inode=\"/user/alice/f\"",
    );
    let give = |owner: Option<&str>, group: Option<&str>| SetAttrRequest {
        path: "/user/alice/f".into(),
        owner: owner.map(String::from),
        group: group.map(String::from),
        ..Default::default()
    };
    denied(
        h.fs.set_attr(&alice, give(Some("bob"), None)).await,
        "only the superuser can change the owner",
    );
    denied(
        h.fs.set_attr(&alice, give(None, Some("staff"))).await,
        "user=alice does not belong to group staff",
    );
    h.fs.set_attr(&alice, give(Some("alice"), Some("alice")))
        .await
        .unwrap();
    let times = SetAttrRequest {
        path: "/user/alice/f".into(),
        mtime_ms: Some(1000),
        ..Default::default()
    };
    denied(h.fs.set_attr(&bob, times.clone()).await, "access=WRITE");
    h.fs.set_attr(&alice, times).await.unwrap();
    denied(
        h.fs.set_replication(&bob, "/user/alice/f", 2).await,
        "access=WRITE",
    );

    // A group member gets the group bits, even when others get more.
    h.fs.set_attr(&su(), give(None, Some("staff")))
        .await
        .unwrap();
    chmod(&h, &alice, "/user/alice/f", 0o604).await.unwrap();
    denied(
        h.fs.get_block_locations(&bob, &req, ""),
        "user=bob, access=READ",
    );

    // A directory closed to others: nothing in it can be reached.
    chmod(&h, &alice, "/user/alice", 0o700).await.unwrap();
    denied(
        h.fs.get_file_info(&bob, "/user/alice/f"),
        "user=bob, access=EXECUTE, inode=\"/user/alice\"",
    );
    denied(
        h.fs.list_status(&bob, "/user/alice", "", 0),
        "user=bob, access=READ_EXECUTE, inode=\"/user/alice\"",
    );
    denied(
        h.fs.content_summary(&bob, "/user"),
        "access=READ_EXECUTE, inode=\"/user/alice\"",
    );
    // fsck shows no entry of a directory the caller may not list, whatever
    // page it asks for; the owner's fsck of its own tree works.
    denied(
        h.fs.fsck(&bob, "/user", ""),
        "access=READ_EXECUTE, inode=\"/user/alice\"",
    );
    denied(
        h.fs.fsck(&bob, "/user", "/user/alice/e"),
        "access=READ_EXECUTE, inode=\"/user/alice\"",
    );
    assert_eq!(h.fs.fsck(&alice, "/user/alice", "").unwrap().total_files, 1);
    denied(
        h.fs.delete(&bob, "/user/alice/f", false, EntryKind::Any)
            .await,
        "access=EXECUTE",
    );
    denied(
        h.fs.delete(&bob, "/user", true, EntryKind::Any).await,
        "user=bob, access=WRITE, inode=\"/\"",
    );
    // Administration is for the superuser.
    denied(
        bob.require_superuser("enter safe mode"),
        "Superuser privilege",
    );

    // The owner deletes; a subtree with a directory it cannot write
    // (and that is not empty) stops a recursive delete.
    mkdir(&h, &alice, "/user/alice/d/e", 0, "").await.unwrap();
    create(&h, &alice, "/user/alice/d/e/x").await.unwrap();
    mkdir(&h, &alice, "/user/alice/d/empty", 0, "")
        .await
        .unwrap();
    chmod(&h, &alice, "/user/alice/d/empty", 0o500)
        .await
        .unwrap();
    chmod(&h, &alice, "/user/alice/d/e", 0o500).await.unwrap();
    denied(
        h.fs.delete(&alice, "/user/alice/d", true, EntryKind::Any)
            .await,
        "user=alice, access=ALL, inode=\"/user/alice/d/e\"",
    );
    chmod(&h, &alice, "/user/alice/d/e", 0o700).await.unwrap();
    h.fs.delete(&alice, "/user/alice/d", true, EntryKind::Any)
        .await
        .unwrap();
    h.fs.delete(&alice, "/user/alice/f", false, EntryKind::Any)
        .await
        .unwrap();
    h.close().await;
}

#[tokio::test]
async fn the_sticky_bit_keeps_others_from_removing_or_renaming_entries() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let (alice, bob) = (user("alice", &["alice"]), user("bob", &["bob"]));
    mkdir(&h, &su(), "/tmp", 0o1777, "").await.unwrap();
    create(&h, &alice, "/tmp/a").await.unwrap();
    create(&h, &bob, "/tmp/b").await.unwrap();
    denied(
        h.fs.delete(&bob, "/tmp/a", false, EntryKind::Any).await,
        "Permission denied by sticky bit: user=bob, path=\"/tmp/a\":alice:root:-rw-r--r--, parent=\"/tmp\":root:root:drwxrwxrwt",
    );
    denied(
        h.fs.rename(&bob, "/tmp/a", "/tmp/c", false).await,
        "sticky bit",
    );
    // Replacing another's entry by a rename is removing it too.
    denied(
        h.fs.rename(&bob, "/tmp/b", "/tmp/a", true).await,
        "sticky bit",
    );
    h.fs.rename(&bob, "/tmp/b", "/tmp/c", false).await.unwrap();
    h.fs.delete(&alice, "/tmp/a", false, EntryKind::Any)
        .await
        .unwrap();
    h.fs.delete(&bob, "/tmp/c", false, EntryKind::Any)
        .await
        .unwrap();
    h.close().await;
}

#[tokio::test]
async fn new_inodes_take_the_group_of_their_directory_and_parents_their_owner() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let alice = user("alice", &["alice", "staff"]);
    h.fs.mkdirs(
        &su(),
        MkdirsRequest {
            path: "/proj".into(),
            mode: 0o775,
            owner: "root".into(),
            group: "staff".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let f =
        h.fs.create(
            &alice,
            CreateRequest {
                path: "/proj/new/deep/f".into(),
                client_name: "c-alice".into(),
                create_parents: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((f.owner.as_str(), f.group.as_str()), ("alice", "staff"));
    let d = h.fs.get_file_info(&alice, "/proj/new/deep").unwrap();
    assert_eq!((d.owner.as_str(), d.group.as_str()), ("alice", "staff"));
    h.close().await;
}

#[tokio::test]
async fn attributes_stored_with_a_close_are_checked_as_a_set_attr() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    three_nodes(&h);
    let alice = user("alice", &["alice"]);
    mkdir(&h, &su(), "/home", 0o777, "").await.unwrap();
    create(&h, &alice, "/home/w").await.unwrap();
    let close = |attrs: FileAttrs| CompleteRequest {
        path: "/home/w".into(),
        client_name: "client-alice".into(),
        attrs: Some(attrs),
        ..Default::default()
    };
    let give_away = FileAttrs {
        owner: Some("bob".into()),
        ..Default::default()
    };
    denied(
        h.fs.complete(&alice, close(give_away)).await,
        "only the superuser can change the owner of /home/w",
    );
    let foreign_group = FileAttrs {
        group: Some("staff".into()),
        ..Default::default()
    };
    denied(
        h.fs.complete(&alice, close(foreign_group)).await,
        "does not belong to group staff",
    );
    assert!(
        h.fs.get_file_info(&su(), "/home/w")
            .unwrap()
            .under_construction
    );
    let own = FileAttrs {
        mode: Some(0o600),
        group: Some("alice".into()),
        mtime_ms: Some(5000),
        ..Default::default()
    };
    assert!(h.fs.complete(&alice, close(own)).await.unwrap());
    let st = h.fs.get_file_info(&su(), "/home/w").unwrap();
    assert_eq!(
        (st.owner.as_str(), st.group.as_str(), st.mode, st.mtime_ms),
        ("alice", "alice", 0o600, 5000)
    );
    h.close().await;
}

/// setuid and setgid are not kept (HDFS's `FsPermission` has the sticky
/// bit and rwx only), whether set at create, by mkdir or by a chmod; the
/// mount stored them before while `dfs chmod` refused them.
#[tokio::test]
async fn setuid_and_setgid_are_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    let su = Caller::superuser();
    h.fs.create(
        &su,
        CreateRequest {
            path: "/f".into(),
            client_name: "c1".into(),
            mode: 0o4755,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(h.fs.get_file_info(&su, "/f").unwrap().mode, 0o755);
    h.fs.mkdirs(
        &su,
        MkdirsRequest {
            path: "/d".into(),
            mode: 0o3775,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(h.fs.get_file_info(&su, "/d").unwrap().mode, 0o1775);
    let st =
        h.fs.set_attr(
            &su,
            SetAttrRequest {
                path: "/d".into(),
                mode: Some(0o6751),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(st.mode, 0o751);
    h.close().await;
}

/// Inode paths and a delete's expected kind tell a user nothing that the
/// plain path would not: the permission checks come first, on the path
/// the inode has now, so walking inode ids maps no directory the user may
/// not enter.
#[tokio::test]
async fn inode_paths_and_expected_kinds_reveal_nothing_past_the_permissions() {
    use dfs_proto::path::inode_path;
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::open(config(dir.path()));
    let su = Caller::superuser();
    let bob = user("bob", &["bob"]);
    mkdir(&h, &su, "/secret", 0o700, "root").await.unwrap();
    mkdir(&h, &su, "/secret/hidden-dir", 0o755, "root")
        .await
        .unwrap();
    create(&h, &su, "/secret/hidden-file").await.unwrap();
    let file =
        h.fs.get_file_info(&su, "/secret/hidden-file")
            .unwrap()
            .inode;
    let sub = h.fs.get_file_info(&su, "/secret/hidden-dir").unwrap().inode;
    for (path, expect) in [
        (inode_path(file, None), EntryKind::Directory),
        (inode_path(sub, None), EntryKind::File),
        ("/secret/hidden-dir".to_string(), EntryKind::File),
        ("/secret/nothing".to_string(), EntryKind::File),
        (inode_path(sub, Some("x")), EntryKind::Any),
    ] {
        let err = h.fs.delete(&bob, &path, false, expect).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{path}: {err}");
        let err = h.fs.get_file_info(&bob, &path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{path}: {err}");
    }
    h.close().await;
}
