//! Namespace tests: unit cases and a model-based proptest.

use std::collections::{BTreeMap, HashMap};

use dfs_proto::error_kind::ErrorKind;
use proptest::prelude::*;

use super::*;
use crate::store::Batch;

fn ns() -> Namespace {
    Namespace::new_empty(defaults::BLOCK_SIZE, 3)
}

/// Applies batches to a map standing in for the store, to check that the
/// batches alone rebuild the same tree.
#[derive(Default)]
struct FakeStore {
    inodes: HashMap<u64, InodeRecord>,
    dirents: BTreeMap<(u64, String), u64>,
    counters: Counters,
}

impl FakeStore {
    fn new(ns: &Namespace) -> FakeStore {
        let mut f = FakeStore::default();
        for i in ns.inodes() {
            f.inodes.insert(i.rec.id, i.rec.clone());
        }
        f.counters = ns.counters();
        f
    }
    fn apply(&mut self, batch: &[Change]) {
        for c in batch {
            match c {
                Change::PutInode(r) => {
                    self.inodes.insert(r.id, r.clone());
                }
                Change::RemoveInode(id) => {
                    self.inodes.remove(id);
                }
                Change::PutDirent {
                    parent,
                    name,
                    child,
                } => {
                    self.dirents.insert((*parent, name.clone()), *child);
                }
                Change::RemoveDirent { parent, name } => {
                    self.dirents.remove(&(*parent, name.clone()));
                }
                Change::Counters(c) => self.counters = *c,
                Change::Call(_) => {}
            }
        }
    }
    fn image(&self) -> Image {
        Image {
            inodes: self.inodes.values().cloned().collect(),
            dirents: self
                .dirents
                .iter()
                .map(|((p, n), c)| (*p, n.clone(), *c))
                .collect(),
            counters: self.counters,
            calls: Vec::new(),
        }
    }
}

fn dump(ns: &Namespace) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for i in ns.inodes() {
        out.insert(ns.path_of(i.rec.id).unwrap(), i.is_dir());
    }
    out
}

fn run(ns: &mut Namespace, fake: &mut FakeStore, planned: Result<Batch>) -> Result<()> {
    let batch = planned?;
    fake.apply(&batch);
    ns.apply(&batch);
    Ok(())
}

fn mkdir(ns: &mut Namespace, p: &str, parents: bool) -> Result<()> {
    let mut fake = FakeStore::new(ns);
    let r = ns
        .plan_mkdirs(p, parents, &NewAttrs::default(), 1)
        .map(|x| x.0);
    run(ns, &mut fake, r)
}

fn create(ns: &mut Namespace, p: &str, overwrite: bool) -> Result<()> {
    let mut fake = FakeStore::new(ns);
    let r = ns.plan_create(&create_args(p, overwrite), 1).map(|x| x.0);
    run(ns, &mut fake, r)
}

fn create_args(p: &str, overwrite: bool) -> CreateArgs {
    CreateArgs {
        path: p.into(),
        client_name: "c".into(),
        overwrite,
        ..Default::default()
    }
}

fn kind(r: Result<()>) -> Option<ErrorKind> {
    r.err().map(|e| e.kind())
}

#[test]
fn mkdir_create_list_stat() {
    let mut n = ns();
    mkdir(&mut n, "/a/b", true).unwrap();
    assert_eq!(
        kind(mkdir(&mut n, "/a/b", false)),
        Some(ErrorKind::AlreadyExists)
    );
    mkdir(&mut n, "/a/b", true).unwrap();
    assert_eq!(
        kind(mkdir(&mut n, "/x/y", false)),
        Some(ErrorKind::NotFound)
    );
    create(&mut n, "/a/f", false).unwrap();
    assert_eq!(
        kind(create(&mut n, "/a/f", false)),
        Some(ErrorKind::AlreadyExists)
    );
    assert_eq!(
        kind(create(&mut n, "/a/f/g", false)),
        Some(ErrorKind::NotADirectory)
    );
    assert_eq!(
        kind(create(&mut n, "/a/b", true)),
        Some(ErrorKind::IsADirectory)
    );
    assert_eq!(
        kind(mkdir(&mut n, "/a/f", true)),
        Some(ErrorKind::AlreadyExists)
    );
    assert_eq!(
        kind(mkdir(&mut n, "/a/f/x", true)),
        Some(ErrorKind::NotADirectory)
    );
    let st = n.get_file_info("/a/f").unwrap();
    assert_eq!(st.mode, 0o644);
    assert_eq!(st.owner, "root");
    assert!(st.under_construction);
    assert_eq!(st.replication, 3);
    let (entries, more) = n.list("/a", "", 0).unwrap();
    assert!(!more);
    assert_eq!(
        entries.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        vec!["/a/b", "/a/f"]
    );
    assert_eq!(n.get_file_info("/a").unwrap().children, 2);
}

#[test]
fn bad_paths_are_refused() {
    let mut n = ns();
    let long = format!("/{}", "x".repeat(256));
    for (p, want) in [
        ("a", ErrorKind::InvalidPath),
        ("/a/../b", ErrorKind::InvalidPath),
        ("/a/./b", ErrorKind::InvalidPath),
        ("/a\0b", ErrorKind::InvalidPath),
        (long.as_str(), ErrorKind::NameTooLong),
    ] {
        assert_eq!(kind(mkdir(&mut n, p, true)), Some(want), "{p:?}");
        assert_eq!(kind(create(&mut n, p, false)), Some(want), "{p:?}");
    }
    let mut args = create_args("/f", false);
    args.block_size = 1000;
    assert_eq!(
        n.plan_create(&args, 1).err().map(|e| e.kind()),
        Some(ErrorKind::InvalidArgument)
    );
    args.block_size = 0;
    args.replication = 33;
    assert_eq!(
        n.plan_create(&args, 1).err().map(|e| e.kind()),
        Some(ErrorKind::InvalidArgument)
    );
}

#[test]
fn listing_pages() {
    let mut n = ns();
    for i in 0..25 {
        create(&mut n, &format!("/f{i:02}"), false).unwrap();
    }
    let (p1, more) = n.list("/", "", 10).unwrap();
    assert!(more);
    assert_eq!(p1.len(), 10);
    let (p2, _) = n.list("/", "f09", 10).unwrap();
    assert_eq!(p2[0].path, "/f10");
    let (p3, more) = n.list("/", "f19", 10).unwrap();
    assert_eq!(p3.len(), 5);
    assert!(!more);
}

/// A rename that would put paths below the moved directory past the
/// depth or length limits is refused (they could no longer be named);
/// one that stays within them, or moves a tree higher, is not.
#[test]
fn renames_never_make_paths_deeper_or_longer_than_the_limits() {
    let mut n = ns();
    let deep = |c: &str, k: usize| format!("/{}", vec![c; k].join("/"));
    let a = deep("a", 200);
    let b = format!("/B{}", deep("b", 99));
    mkdir(&mut n, &a, true).unwrap();
    mkdir(&mut n, &b, true).unwrap();
    let rn = |n: &mut Namespace, s: &str, d: &str| {
        let mut fake = FakeStore::new(n);
        let r = n.plan_rename(s, d, false, 1).map(|x| x.0);
        run(n, &mut fake, r)
    };
    // 200 + 1 + 100 components below /B would be 301.
    let err = rn(&mut n, "/B", &format!("{a}/B")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NameTooLong, "{err}");
    assert!(err.to_string().contains("deeper than 256"), "{err}");
    assert!(n.resolve(&b).is_ok(), "the refused rename changed the tree");
    // 50 + 1 + 100 fits.
    let mid = deep("a", 50);
    rn(&mut n, "/B", &format!("{mid}/B")).unwrap();
    assert!(n.resolve(&format!("{mid}{b}")).is_ok());
    // Length: a 2,202-byte tree moved under another one.
    let long = |c: char| format!("/{}", vec![c.to_string().repeat(199); 11].join("/"));
    let (l1, l2) = (format!("/L{}", long('x')), format!("/M{}", long('y')));
    mkdir(&mut n, &l1, true).unwrap();
    mkdir(&mut n, &l2, true).unwrap();
    let err = rn(&mut n, "/L", &format!("{l2}/L")).unwrap_err();
    assert!(err.to_string().contains("longer than 4096"), "{err}");
    // Moving a deep tree higher is never refused.
    rn(&mut n, &format!("{mid}/B"), "/B2").unwrap();
}

#[test]
fn rename_rules() {
    let mut n = ns();
    mkdir(&mut n, "/d/e", true).unwrap();
    create(&mut n, "/f", false).unwrap();
    create(&mut n, "/g", false).unwrap();
    let rn = |n: &mut Namespace, s: &str, d: &str, o: bool| {
        let mut fake = FakeStore::new(n);
        let r = n.plan_rename(s, d, o, 1).map(|x| x.0);
        run(n, &mut fake, r)
    };
    assert_eq!(
        kind(rn(&mut n, "/d", "/d/e/x", false)),
        Some(ErrorKind::InvalidArgument)
    );
    assert_eq!(
        kind(rn(&mut n, "/d", "/d/x", false)),
        Some(ErrorKind::InvalidArgument)
    );
    assert_eq!(
        kind(rn(&mut n, "/nope", "/x", false)),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(
        kind(rn(&mut n, "/f", "/no/x", false)),
        Some(ErrorKind::NotFound)
    );
    assert_eq!(
        kind(rn(&mut n, "/f", "/g", false)),
        Some(ErrorKind::AlreadyExists)
    );
    assert_eq!(
        kind(rn(&mut n, "/f", "/d", true)),
        Some(ErrorKind::IsADirectory)
    );
    assert_eq!(
        kind(rn(&mut n, "/d", "/f", true)),
        Some(ErrorKind::NotADirectory)
    );
    mkdir(&mut n, "/empty", false).unwrap();
    assert_eq!(
        kind(rn(&mut n, "/empty", "/d", true)),
        Some(ErrorKind::DirectoryNotEmpty)
    );
    rn(&mut n, "/f", "/g", true).unwrap();
    assert!(n.get_file_info("/f").is_err());
    rn(&mut n, "/d", "/empty", true).unwrap();
    assert!(n.get_file_info("/empty/e").is_ok());
    rn(&mut n, "/g", "/g", false).unwrap();
}

#[test]
fn delete_rules() {
    let mut n = ns();
    mkdir(&mut n, "/d/e", true).unwrap();
    let del = |n: &mut Namespace, p: &str, r: bool| {
        let mut fake = FakeStore::new(n);
        let res = n.plan_delete(p, r, 1).map(|x| x.0);
        run(n, &mut fake, res)
    };
    assert_eq!(
        kind(del(&mut n, "/", true)),
        Some(ErrorKind::InvalidArgument)
    );
    assert_eq!(
        kind(del(&mut n, "/d", false)),
        Some(ErrorKind::DirectoryNotEmpty)
    );
    del(&mut n, "/d", true).unwrap();
    assert_eq!(dump(&n).len(), 1);
}

#[test]
fn image_checks_catch_inconsistency() {
    let mut n = ns();
    let mut fake = FakeStore::new(&n);
    let (b, _, _) = n
        .plan_mkdirs("/a/b", true, &NewAttrs::default(), 1)
        .unwrap();
    fake.apply(&b);
    n.apply(&b);
    assert!(Namespace::from_image(fake.image(), 4096, 3).is_ok());
    let mut bad = fake.image();
    bad.dirents.retain(|d| d.1 != "b");
    assert!(matches!(
        Namespace::from_image(bad, 4096, 3),
        Err(Error::CorruptStore { .. })
    ));
    let mut bad = fake.image();
    bad.counters.next_inode = 2;
    assert!(matches!(
        Namespace::from_image(bad, 4096, 3),
        Err(Error::CorruptStore { .. })
    ));
}

// ---------------------------------------------------------------- model

#[derive(Debug, Clone)]
enum Op {
    Mkdir(String, bool),
    Create(String, bool),
    Delete(String, bool),
    Rename(String, String, bool),
}

fn path_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof!["a", "b", "c"], 0..4)
        .prop_map(|v| format!("/{}", v.join("/")))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        (path_strategy(), any::<bool>()).prop_map(|(p, b)| Op::Mkdir(p, b)),
        (path_strategy(), any::<bool>()).prop_map(|(p, b)| Op::Create(p, b)),
        (path_strategy(), any::<bool>()).prop_map(|(p, b)| Op::Delete(p, b)),
        (path_strategy(), path_strategy(), any::<bool>()).prop_map(|(s, d, b)| Op::Rename(s, d, b)),
    ]
}

/// The reference: path -> is_dir.
struct Model(BTreeMap<String, bool>);

fn parent_of(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].into(),
        None => "/".into(),
    }
}

fn ancestors(p: &str) -> Vec<String> {
    // Proper ancestors below the root, top down.
    let comps: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
    (1..comps.len())
        .map(|i| format!("/{}", comps[..i].join("/")))
        .collect()
}

impl Model {
    fn new() -> Model {
        let mut m = BTreeMap::new();
        m.insert("/".to_string(), true);
        Model(m)
    }
    /// Like Namespace::walk.
    fn walk(&self, p: &str) -> Result<bool, ErrorKind> {
        for a in ancestors(p) {
            match self.0.get(&a) {
                Some(true) => {}
                Some(false) => return Err(ErrorKind::NotADirectory),
                None => return Err(ErrorKind::NotFound),
            }
        }
        self.0.get(p).copied().ok_or(ErrorKind::NotFound)
    }
    /// Like Namespace::resolve_parent.
    fn parent(&self, p: &str) -> Result<(), ErrorKind> {
        for a in ancestors(p) {
            match self.0.get(&a) {
                Some(true) => {}
                Some(false) => return Err(ErrorKind::NotADirectory),
                None => return Err(ErrorKind::NotFound),
            }
        }
        Ok(())
    }
    fn children(&self, p: &str) -> Vec<String> {
        let pre = if p == "/" {
            "/".to_string()
        } else {
            format!("{p}/")
        };
        self.0
            .keys()
            .filter(|k| k.starts_with(&pre) && k.as_str() != p)
            .cloned()
            .collect()
    }
    fn remove_tree(&mut self, p: &str) {
        for c in self.children(p) {
            self.0.remove(&c);
        }
        self.0.remove(p);
    }
    fn apply(&mut self, op: &Op) -> Result<(), ErrorKind> {
        match op {
            Op::Mkdir(p, parents) => {
                match self.walk(p) {
                    Ok(true) => {
                        return if *parents {
                            Ok(())
                        } else {
                            Err(ErrorKind::AlreadyExists)
                        }
                    }
                    Ok(false) => return Err(ErrorKind::AlreadyExists),
                    Err(ErrorKind::NotFound) => {}
                    Err(e) => return Err(e),
                }
                if *parents {
                    for a in ancestors(p) {
                        self.0.entry(a).or_insert(true);
                    }
                } else {
                    self.parent(p)?;
                }
                self.0.insert(p.clone(), true);
                Ok(())
            }
            Op::Create(p, overwrite) => {
                if p == "/" {
                    return Err(ErrorKind::IsADirectory);
                }
                self.parent(p)?;
                match self.0.get(p) {
                    Some(_) if !overwrite => return Err(ErrorKind::AlreadyExists),
                    Some(true) => return Err(ErrorKind::IsADirectory),
                    _ => {}
                }
                self.0.insert(p.clone(), false);
                Ok(())
            }
            Op::Delete(p, recursive) => {
                let is_dir = self.walk(p)?;
                if p == "/" {
                    return Err(ErrorKind::InvalidArgument);
                }
                if is_dir && !recursive && !self.children(p).is_empty() {
                    return Err(ErrorKind::DirectoryNotEmpty);
                }
                self.remove_tree(p);
                Ok(())
            }
            Op::Rename(s, d, overwrite) => {
                let src_dir = self.walk(s)?;
                if s == "/" || d == "/" {
                    return Err(ErrorKind::InvalidArgument);
                }
                if s == d {
                    return Ok(());
                }
                self.parent(d)?;
                let dp = parent_of(d);
                if dp == *s || dp.starts_with(&format!("{s}/")) {
                    return Err(ErrorKind::InvalidArgument);
                }
                if let Some(&dst_dir) = self.0.get(d) {
                    match (src_dir, dst_dir) {
                        (false, true) => return Err(ErrorKind::IsADirectory),
                        (true, false) => return Err(ErrorKind::NotADirectory),
                        _ if !overwrite => return Err(ErrorKind::AlreadyExists),
                        (true, true) if !self.children(d).is_empty() => {
                            return Err(ErrorKind::DirectoryNotEmpty)
                        }
                        _ => self.remove_tree(d),
                    }
                }
                let moved: Vec<(String, bool)> = self
                    .children(s)
                    .into_iter()
                    .map(|c| {
                        let v = self.0[&c];
                        (c, v)
                    })
                    .collect();
                self.remove_tree(s);
                self.0.insert(d.clone(), src_dir);
                for (c, v) in moved {
                    self.0.insert(format!("{d}{}", &c[s.len()..]), v);
                }
                Ok(())
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn namespace_matches_model(ops in proptest::collection::vec(op_strategy(), 1..60)) {
        let mut n = ns();
        let mut fake = FakeStore::new(&n);
        let mut model = Model::new();
        for op in &ops {
            let planned = match op {
                Op::Mkdir(p, b) => n.plan_mkdirs(p, *b, &NewAttrs::default(), 5).map(|x| x.0),
                Op::Create(p, b) => n.plan_create(&create_args(p, *b), 5).map(|x| x.0),
                Op::Delete(p, b) => n.plan_delete(p, *b, 5).map(|x| x.0),
                Op::Rename(s, d, b) => n.plan_rename(s, d, *b, 5).map(|x| x.0),
            };
            let got = run(&mut n, &mut fake, planned).map_err(|e| e.kind());
            let want = model.apply(op);
            prop_assert_eq!(got, want, "{:?}", op);
            prop_assert_eq!(&dump(&n), &model.0);
        }
        // The batches alone rebuild the same, consistent tree.
        let rebuilt = Namespace::from_image(fake.image(), defaults::BLOCK_SIZE, 3).unwrap();
        prop_assert_eq!(dump(&rebuilt), dump(&n));
        for i in n.inodes() {
            prop_assert_eq!(&rebuilt.inode(i.rec.id).unwrap().rec, &i.rec);
        }
    }
}

#[test]
fn subtree_pages_walk_in_order_and_resume_after_anything() {
    let mut n = ns();
    for d in ["/a/b", "/a/c", "/a-x", "/z"] {
        mkdir(&mut n, d, true).unwrap();
    }
    for f in ["/a/b/f1", "/a/b/f2", "/a/c/g", "/a-x/h", "/top"] {
        create(&mut n, f, false).unwrap();
    }
    let (root, _) = n.resolve("/").unwrap();
    let (all, more) = n.subtree_page(root, "/", None, 100);
    assert!(!more);
    let paths: Vec<&str> = all.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/", "/a", "/a/b", "/a/b/f1", "/a/b/f2", "/a/c", "/a/c/g", "/a-x", "/a-x/h", "/top",
            "/z"
        ]
    );
    // Pages of any size add up to the same walk.
    for size in 1..=4 {
        let mut got: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, more) = n.subtree_page(root, "/", after.as_deref(), size);
            assert!(page.len() <= size);
            got.extend(page.iter().map(|(_, p)| p.clone()));
            if !more {
                break;
            }
            after = page.last().map(|(_, p)| p.clone());
        }
        assert_eq!(got, paths, "pages of {size}");
    }
    // A subtree, and resuming after a path deleted since.
    let (a, _) = n.resolve("/a").unwrap();
    let (page, _) = n.subtree_page(a, "/a", Some("/a/b/f1"), 100);
    let sub: Vec<&str> = page.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(sub, ["/a/b/f2", "/a/c", "/a/c/g"]);
    let mut fake = FakeStore::new(&n);
    let res = n.plan_delete("/a/b", true, 1).map(|x| x.0);
    run(&mut n, &mut fake, res).unwrap();
    let (page, more) = n.subtree_page(root, "/", Some("/a/b/f1"), 100);
    let rest: Vec<&str> = page.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(rest, ["/a/c", "/a/c/g", "/a-x", "/a-x/h", "/top", "/z"]);
    assert!(!more);
}
