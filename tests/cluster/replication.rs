//! Rack-aware placement, failure detection, re-replication, trimming,
//! decommissioning, setrep and fsck (issue 3). Datanodes sit on distinct
//! 127.0.0.x addresses so that every node is its own "host".

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use dfs_tests::{sha256_file, wait_until, Cluster, NodeSpec};
use serde_json::Value;

const MIB: usize = 1024 * 1024;

/// Fast failure detection for tests.
const FAST: &[&str] = &["--stale-after", "2s", "--dead-after", "5s"];

fn nodes(racks: &[&str], first_host: u8) -> Vec<NodeSpec> {
    racks
        .iter()
        .enumerate()
        .map(|(i, r)| NodeSpec {
            host: format!("127.0.0.{}", first_host as usize + i),
            rack: Some(r.to_string()),
        })
        .collect()
}

fn six_nodes_three_racks(first_host: u8) -> Vec<NodeSpec> {
    nodes(&["/r1", "/r1", "/r2", "/r2", "/r3", "/r3"], first_host)
}

fn fsck(c: &Cluster) -> Value {
    // fsck exits non-zero when data is missing; the JSON is printed either way.
    let out = c.dfs(&["fsck", "/", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fsck --json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Every block's replica (address, rack) list.
fn blocks(report: &Value) -> Vec<(u64, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for f in report["files"].as_array().unwrap() {
        for b in f["blocks"].as_array().unwrap() {
            let reps = b["replicas"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["address"].as_str().unwrap().to_string(),
                        r["rack"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            out.push((b["id"].as_u64().unwrap(), reps));
        }
    }
    out
}

/// Replication `r` on distinct nodes, at least two racks, at most two per rack.
fn well_placed(reps: &[(String, String)], r: usize) -> bool {
    let nodes: HashSet<&String> = reps.iter().map(|(a, _)| a).collect();
    let mut per_rack: HashMap<&String, usize> = HashMap::new();
    for (_, rack) in reps {
        *per_rack.entry(rack).or_default() += 1;
    }
    reps.len() == r && nodes.len() == r && per_rack.len() >= 2 && per_rack.values().all(|&n| n <= 2)
}

fn healthy_and_placed(c: &Cluster, r: usize) -> bool {
    let rep = fsck(c);
    rep["status"] == "HEALTHY"
        && rep["under_replicated"] == 0
        && rep["over_replicated"] == 0
        && rep["mis_replicated"] == 0
        && rep["missing"] == 0
        && blocks(&rep).iter().all(|(_, reps)| well_placed(reps, r))
}

fn put_files(c: &Cluster, n: usize, size: usize) -> Vec<(std::path::PathBuf, String)> {
    c.dfs_ok(&["mkdir", "-p", "/data"]);
    (0..n)
        .map(|i| {
            let local = c.local_file(&format!("p{i}"), size + i * 1000, 100 + i as u64);
            let remote = format!("/data/f{i}");
            c.dfs_ok(&["put", local.to_str().unwrap(), &remote]);
            (local, remote)
        })
        .collect()
}

fn all_read_back(c: &Cluster, files: &[(std::path::PathBuf, String)]) {
    for (i, (local, remote)) in files.iter().enumerate() {
        let out = c
            .dir
            .path()
            .join(format!("rb-{i}-{}", rand::random::<u32>()));
        c.dfs_ok(&["get", remote, out.to_str().unwrap()]);
        assert_eq!(sha256_file(local), sha256_file(&out), "{remote}");
    }
}

#[test]
fn six_nodes_three_racks_placement_rules_hold() {
    let c = Cluster::builder().nodes(six_nodes_three_racks(21)).start();
    put_files(&c, 4, 3 * MIB);
    let rep = fsck(&c);
    assert_eq!(rep["status"], "HEALTHY", "{rep}");
    let bl = blocks(&rep);
    assert!(bl.len() >= 12);
    for (id, reps) in &bl {
        assert!(well_placed(reps, 3), "block {id}: {reps:?}");
    }
    let report = c.dfs_json(&["report", "--json"]);
    let racks: HashSet<&str> = report["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rack"].as_str().unwrap())
        .collect();
    assert_eq!(racks, HashSet::from(["/r1", "/r2", "/r3"]));
}

#[test]
fn dead_datanode_is_re_replicated_then_trimmed_when_it_returns() {
    let mut c = Cluster::builder()
        .nodes(six_nodes_three_racks(31))
        .namenode_args(FAST)
        .start();
    let files = put_files(&c, 4, 3 * MIB);
    c.datanodes[2].kill();
    wait_until(
        Duration::from_secs(60),
        "re-replication after a dead datanode",
        || {
            let report = c.dfs_json(&["report", "--json"]);
            let dead = report["datanodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["state"] == "dead");
            dead && healthy_and_placed(&c, 3)
        },
    );
    all_read_back(&c, &files);

    // The node comes back with its old replicas: the extra copies are trimmed to 3.
    c.datanodes[2].restart();
    wait_until(
        Duration::from_secs(60),
        "over-replicated blocks trimmed",
        || {
            let report = c.dfs_json(&["report", "--json"]);
            let live = report["datanodes"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["state"] == "live")
                .count();
            live == 6 && healthy_and_placed(&c, 3)
        },
    );
    all_read_back(&c, &files);
}

#[test]
fn losing_a_whole_rack_loses_nothing() {
    let mut c = Cluster::builder()
        .nodes(six_nodes_three_racks(41))
        .namenode_args(FAST)
        .start();
    let files = put_files(&c, 3, 2 * MIB + 5);
    // Both nodes of /r2.
    c.datanodes[2].kill();
    c.datanodes[3].kill();
    all_read_back(&c, &files);
    wait_until(
        Duration::from_secs(90),
        "replication and rack diversity after a rack loss",
        || healthy_and_placed(&c, 3),
    );
    all_read_back(&c, &files);
}

#[test]
fn decommissioned_node_drains_without_loss() {
    let mut c = Cluster::builder()
        .nodes(nodes(&["/r1", "/r1", "/r2", "/r2"], 51))
        .namenode_args(FAST)
        .start();
    let files = put_files(&c, 3, 2 * MIB);
    let victim = c.datanodes[0].addr.clone();
    // A node in service is not recommissioned: nothing changes, it says so.
    let out = c.dfs_ok(&["admin", "recommission", &victim]);
    assert!(out.contains("was not decommissioned"), "{out}");
    c.dfs_ok(&["admin", "decommission", &victim]);
    wait_until(Duration::from_secs(60), "decommission to finish", || {
        let report = c.dfs_json(&["report", "--json"]);
        report["datanodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["address"] == victim.as_str() && d["state"] == "decommissioned")
    });
    // fsck labels the drained node's replicas as such and counts only the
    // replicas in service (3 of 3, not 4 of 3).
    let rep = fsck(&c);
    let mut on_victim = 0;
    for f in rep["files"].as_array().unwrap() {
        for b in f["blocks"].as_array().unwrap() {
            for r in b["replicas"].as_array().unwrap() {
                if r["address"] == victim.as_str() {
                    on_victim += 1;
                    assert_eq!(r["decommissioned"], true, "{r}");
                    assert_eq!(r["decommissioning"], false, "{r}");
                }
            }
        }
    }
    assert!(on_victim > 0, "{rep}");
    let text = c.dfs_ok(&["fsck", "/"]);
    let line = text
        .lines()
        .find(|l| l.contains(&format!("{victim} /r1 decommissioned")))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("repl=3/3"), "{line}");
    c.datanodes[0].kill();
    wait_until(
        Duration::from_secs(30),
        "fsck HEALTHY after stopping the drained node",
        || {
            let rep = fsck(&c);
            rep["status"] == "HEALTHY" && rep["under_replicated"] == 0 && rep["missing"] == 0
        },
    );
    all_read_back(&c, &files);
}

#[test]
fn one_rack_and_too_few_nodes_still_accept_writes() {
    // One rack, three nodes: every rule that can hold, holds.
    let c = Cluster::builder()
        .nodes(nodes(&["/only", "/only", "/only"], 61))
        .start();
    let files = put_files(&c, 2, 2 * MIB);
    let rep = fsck(&c);
    assert_eq!(rep["status"], "HEALTHY", "{rep}");
    assert_eq!(
        rep["mis_replicated"], 0,
        "one rack cannot be mis-replicated: {rep}"
    );
    for (id, reps) in blocks(&rep) {
        let n: HashSet<&String> = reps.iter().map(|(a, _)| a).collect();
        assert_eq!(n.len(), 3, "block {id}");
    }
    all_read_back(&c, &files);
    drop(c);

    // Two nodes, replication 3: writes succeed, fsck says under-replicated.
    let c = Cluster::builder().nodes(nodes(&["/a", "/b"], 65)).start();
    let files = put_files(&c, 2, MIB + 1);
    let rep = fsck(&c);
    assert!(rep["under_replicated"].as_u64().unwrap() >= 2, "{rep}");
    assert_eq!(rep["missing"], 0);
    for (_, reps) in blocks(&rep) {
        assert_eq!(reps.len(), 2);
    }
    all_read_back(&c, &files);
}

#[test]
fn setrep_up_and_down() {
    let c = Cluster::builder().nodes(six_nodes_three_racks(71)).start();
    let files = put_files(&c, 1, 2 * MIB + 3);
    let path = files[0].1.clone();
    c.dfs_ok(&["setrep", "5", &path]);
    wait_until(Duration::from_secs(60), "5 replicas", || {
        let rep = fsck(&c);
        let bl = blocks(&rep);
        !bl.is_empty() && bl.iter().all(|(_, r)| r.len() == 5) && rep["under_replicated"] == 0
    });
    assert_eq!(c.dfs_json(&["stat", "--json", &path])["replication"], 5);
    c.dfs_ok(&["setrep", "2", &path]);
    wait_until(Duration::from_secs(60), "2 replicas on 2 racks", || {
        let rep = fsck(&c);
        let bl = blocks(&rep);
        rep["over_replicated"] == 0
            && bl.iter().all(|(_, r)| {
                r.len() == 2 && r.iter().map(|(_, k)| k).collect::<HashSet<_>>().len() == 2
            })
    });
    all_read_back(&c, &files);
}

#[test]
fn topology_file_wins_over_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("topology");
    std::fs::write(&topo, "127.0.0.81 /dc1/rackA\n127.0.0.82 /dc1/rackB\n").unwrap();
    let c = Cluster::builder()
        .nodes(vec![
            NodeSpec {
                host: "127.0.0.81".into(),
                rack: Some("/flag".into()),
            },
            NodeSpec {
                host: "127.0.0.82".into(),
                rack: None,
            },
            NodeSpec {
                host: "127.0.0.83".into(),
                rack: None,
            },
        ])
        .namenode_args(&["--topology", topo.to_str().unwrap()])
        .start();
    let report = c.dfs_json(&["report", "--json"]);
    let mut racks: Vec<String> = report["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["rack"].as_str().unwrap().to_string())
        .collect();
    racks.sort();
    assert_eq!(racks, vec!["/dc1/rackA", "/dc1/rackB", "/default-rack"]);
}

/// Two full datanodes and two new empty ones (32 MiB each, racks
/// alternating): `dfs balancer` moves replicas to the new ones until
/// every node is within the threshold of the average, keeping each
/// block's replica count and racks, and every file reads back.
#[test]
fn the_balancer_gives_new_datanodes_their_share() {
    let cap = (32 * MIB).to_string();
    let specs = nodes(&["/r1", "/r2", "/r1", "/r2"], 91);
    let mut c = Cluster::builder()
        .nodes(specs[..2].to_vec())
        .replication(2)
        .datanode_args(&["--capacity", &cap])
        .start();
    let files = put_files(&c, 8, MIB);
    // The builder's --capacity applies to added nodes too.
    c.add_datanode(specs[2].clone());
    c.add_datanode(specs[3].clone());
    c.wait_live(4, Duration::from_secs(30));
    let report = c.dfs_json(&["report", "--json"]);
    for d in report["datanodes"].as_array().unwrap() {
        assert_eq!(d["capacity"].as_u64(), Some(32 * MIB as u64), "{d}");
    }
    // Bytes of replicas per node, by the namenode's block map.
    let per_node = |report: &Value| -> HashMap<String, u64> {
        let mut m = HashMap::new();
        for f in report["files"].as_array().unwrap() {
            for b in f["blocks"].as_array().unwrap() {
                for r in b["replicas"].as_array().unwrap() {
                    let addr = r["address"].as_str().unwrap().to_string();
                    *m.entry(addr).or_default() += b["length"].as_u64().unwrap();
                }
            }
        }
        m
    };
    let before = per_node(&fsck(&c));
    assert_eq!(before.len(), 2, "{before:?}");

    // Stopping `dfs balancer` (SIGTERM) stops the run at the namenode.
    let mut run = c
        .dfs_command(&["balancer", "--threshold", "5"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(run.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("balancing:"), "{first}");
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    assert_eq!(run.wait().unwrap().code(), Some(128 + libc::SIGTERM));
    let log = std::fs::read_to_string(&c.namenode.log).unwrap();
    assert!(
        log.contains("balancer stopped by an administrator"),
        "{log}"
    );

    let out = c.dfs_ok(&["balancer", "--threshold", "5"]);
    assert!(
        out.contains("balanced: every node is within 5.0 points"),
        "{out}"
    );

    // Every node within 5 points of the average use (8 files of 1 MiB and
    // a tail, twice, on 4 × 32 MiB).
    let report = fsck(&c);
    assert_eq!(report["status"], "HEALTHY", "{report}");
    let after = per_node(&report);
    assert_eq!(
        after.len(),
        4,
        "the new nodes got nothing: {after:?}\n{out}"
    );
    let capacity = 32.0 * MIB as f64;
    let average = after.values().sum::<u64>() as f64 / (4.0 * capacity);
    for (addr, bytes) in &after {
        let used = *bytes as f64 / capacity;
        assert!(
            (used - average).abs() <= 0.05,
            "{addr} uses {used:.3} against an average of {average:.3}: {after:?}\n{out}"
        );
    }
    for (id, reps) in blocks(&report) {
        assert_eq!(reps.len(), 2, "block {id}: {reps:?}");
        let racks: HashSet<&String> = reps.iter().map(|r| &r.1).collect();
        assert_eq!(racks.len(), 2, "block {id} lost a rack: {reps:?}");
    }
    all_read_back(&c, &files);
    // Balanced already: a second run ends at once without moving anything.
    let out = c.dfs_ok(&["balancer", "--threshold", "5"]);
    assert!(
        out.contains("balanced") && out.contains("0 blocks"),
        "{out}"
    );
}

/// `setrep -w` for more replicas than the cluster has datanodes says what
/// it waits for (a block with 3 of 5 replicas, and why it may never come)
/// instead of waiting in silence; the replication stays set.
#[test]
fn setrep_wait_beyond_the_datanodes_says_what_it_waits_for() {
    use std::io::Read;
    let c = Cluster::builder().start();
    let files = put_files(&c, 1, 1000);
    let path = files[0].1.clone();
    let mut child = c
        .dfs_command(&["setrep", "-w", "5", &path])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while stderr.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        String::from_utf8_lossy(&line).into_owned()
    });
    let line = {
        let started = std::time::Instant::now();
        while !reader.is_finished() && started.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        reader.join().unwrap()
    };
    assert!(
        line.contains(&format!("still waiting for {path}")) && line.contains("3 of 5 replicas"),
        "{line}"
    );
    assert_eq!(c.dfs_json(&["stat", "--json", &path])["replication"], 5);
}

/// A datanode started on a copy of a live datanode's data directory has
/// that node's id: it is refused (saying which node holds the id) instead
/// of taking over the id, so the live node's replicas stay counted where
/// they are and are never attributed to an address nobody serves.
#[test]
fn a_copied_data_directory_cannot_take_a_live_nodes_identity() {
    let mut c = Cluster::builder()
        .nodes(nodes(&["/r1", "/r2", "/r2"], 111))
        .namenode_args(FAST)
        .start();
    let files = put_files(&c, 2, MIB);
    let copy = c.datanode_dir(0).with_extension("copy");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(c.datanode_dir(0))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let copy_arg = copy.display().to_string();
    let i = c.add_datanode_with(
        NodeSpec {
            host: "127.0.0.114".into(),
            rack: Some("/r3".into()),
        },
        &["--data", &copy_arg],
    );
    let log = c.datanodes[i].log.clone();
    wait_until(Duration::from_secs(20), "the copy's refusal", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("has this node id"))
    });
    let report = c.dfs_json(&["report", "--json"]);
    let addrs: Vec<&str> = report["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs.len(), 3, "{report}");
    assert!(
        !addrs.iter().any(|a| a.starts_with("127.0.0.114:")),
        "{report}"
    );
    assert!(healthy_and_placed(&c, 3));
    all_read_back(&c, &files);
}

/// A datanode restarted on a new address with its own data directory
/// (a port of 0, a container's new IP) takes its id along at once: the
/// namenode finds nothing answering at the old address. With the default
/// 30 s stale limit, waiting for the old entry to go stale would take
/// longer than this test allows.
#[test]
fn a_datanode_restarted_on_a_new_address_keeps_its_identity_at_once() {
    let mut c = Cluster::builder()
        .nodes(nodes(&["/r1", "/r2", "/r2"], 121))
        .start();
    let files = put_files(&c, 2, MIB);
    let id = |c: &Cluster, prefix: &str| {
        let report = c.dfs_json(&["report", "--json"]);
        report["datanodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["address"].as_str().unwrap().starts_with(prefix) && d["state"] == "live")
            .map(|d| d["id"].as_str().unwrap().to_string())
    };
    let before = id(&c, "127.0.0.121:").expect("the first node is live");
    c.datanodes[0].kill();
    let dir = c.datanode_dir(0).display().to_string();
    c.add_datanode_with(
        NodeSpec {
            host: "127.0.0.124".into(),
            rack: Some("/r1".into()),
        },
        &["--data", &dir],
    );
    wait_until(Duration::from_secs(10), "the id at the new address", || {
        id(&c, "127.0.0.124:").as_deref() == Some(before.as_str())
    });
    all_read_back(&c, &files);
}
