//! Cluster commands: `report`, `fsck`, `recover`, `balancer`,
//! `admin decommission`, `admin safemode`.

use std::fmt::Write as _;
use std::time::Duration;

use super::format::human_size;
use super::{print_json, print_out, stop, CliError, CliResult, SafemodeArg};
use crate::{BalancerStatus, Client, Error, FsckReport, NodeState, SafeModeAction};

/// How long `dfs recover` waits for the file to close.
const RECOVER_WAIT: Duration = Duration::from_secs(60);

/// `dfs report`.
pub(crate) async fn report(client: &Client, json: bool) -> CliResult {
    let r = client.report().await?;
    if json {
        return print_json(&r);
    }
    let count = |s: NodeState| r.datanodes.iter().filter(|d| d.state == s).count();
    let mut t = String::new();
    let _ = writeln!(
        t,
        "Safe mode: {}{}",
        if r.safe_mode { "ON" } else { "OFF" },
        if r.safe_mode_reason.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.safe_mode_reason)
        }
    );
    let capacity: u64 = r.datanodes.iter().map(|d| d.capacity).sum();
    let used: u64 = r.datanodes.iter().map(|d| d.used).sum();
    let remaining: u64 = r.datanodes.iter().map(|d| d.remaining).sum();
    let _ = writeln!(
        t,
        "Capacity: {} ({capacity}), used: {} ({used}), remaining: {} ({remaining})",
        human_size(capacity),
        human_size(used),
        human_size(remaining)
    );
    let _ = writeln!(
        t,
        "Blocks: {}, under-replicated: {}, pending replication: {}",
        r.total_blocks, r.under_replicated, r.pending_replication
    );
    let _ = writeln!(
        t,
        "Datanodes: {} ({} live, {} stale, {} dead, {} decommissioning, {} decommissioned)",
        r.datanodes.len(),
        count(NodeState::Live),
        count(NodeState::Stale),
        count(NodeState::Dead),
        count(NodeState::Decommissioning),
        count(NodeState::Decommissioned)
    );
    for d in &r.datanodes {
        let _ = writeln!(t);
        let _ = writeln!(t, "Name: {} ({})", d.address, d.id);
        let _ = writeln!(t, "Rack: {}", d.rack);
        let _ = writeln!(t, "State: {}", d.state.as_str());
        let _ = writeln!(
            t,
            "Capacity: {} ({}), used: {} ({}), remaining: {} ({})",
            human_size(d.capacity),
            d.capacity,
            human_size(d.used),
            d.used,
            human_size(d.remaining),
            d.remaining
        );
        let connections = if d.max_xceivers == 0 {
            "unknown".to_string()
        } else {
            format!("{} of {}", d.xceivers, d.max_xceivers)
        };
        let _ = writeln!(
            t,
            "Blocks: {}, active transfers: {}, transfer connections: {connections}",
            d.blocks, d.active_transfers
        );
        let _ = writeln!(
            t,
            "Last heartbeat: {:.1} s ago",
            d.last_heartbeat_ms_ago as f64 / 1000.0
        );
        if !d.failure.is_empty() {
            let _ = writeln!(t, "Failure: {}", d.failure);
        }
    }
    print_out(&t)
}

/// The text form of an fsck report, in the manner of `hdfs fsck`.
pub(crate) fn fsck_text(path: &str, r: &FsckReport) -> String {
    let mut t = String::new();
    for f in &r.files {
        let problems = f
            .blocks
            .iter()
            .filter(|b| {
                b.missing
                    || b.corrupt
                    || b.under_replicated
                    || b.mis_replicated
                    || b.over_replicated
            })
            .count();
        let _ = writeln!(
            t,
            "{} {} bytes, replication {}, {} block(s){}: {}",
            f.path,
            f.length,
            f.replication,
            f.blocks.len(),
            if f.under_construction {
                " (being written)"
            } else {
                ""
            },
            if problems == 0 { "OK" } else { "PROBLEMS" }
        );
        for (i, b) in f.blocks.iter().enumerate() {
            let mut flags = Vec::new();
            if b.missing {
                flags.push("MISSING");
            }
            if b.corrupt {
                flags.push("CORRUPT");
            }
            if b.under_replicated {
                flags.push("UNDER-REPLICATED");
            }
            if b.over_replicated {
                flags.push("OVER-REPLICATED");
            }
            if b.mis_replicated {
                flags.push("MIS-REPLICATED");
            }
            let replicas = b
                .replicas
                .iter()
                .map(|p| {
                    let mut s = format!("{} {}", p.address, p.rack);
                    if p.corrupt {
                        s.push_str(" corrupt");
                    }
                    if p.decommissioning {
                        s.push_str(" decommissioning");
                    }
                    if p.decommissioned {
                        s.push_str(" decommissioned");
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", ");
            // As HDFS's live_repl: replicas in service, not those on
            // nodes leaving it (listed, with their state).
            let in_service = b
                .replicas
                .iter()
                .filter(|p| !p.corrupt && !p.decommissioning && !p.decommissioned)
                .count();
            let _ = writeln!(
                t,
                "  {i}. blk_{}_{} len={} repl={}/{} [{replicas}]{}{}",
                b.id,
                b.generation_stamp,
                b.length,
                in_service,
                b.expected_replication,
                if flags.is_empty() { "" } else { " " },
                flags.join(" ")
            );
        }
    }
    let status = if r.is_healthy() { "HEALTHY" } else { "CORRUPT" };
    let _ = writeln!(t);
    let _ = writeln!(t, "Status: {status}");
    let _ = writeln!(t, " Total dirs:\t\t\t{}", r.total_dirs);
    let _ = writeln!(t, " Total files:\t\t\t{}", r.total_files);
    let _ = writeln!(t, " Total blocks:\t\t\t{}", r.total_blocks);
    let _ = writeln!(t, " Under-replicated blocks:\t{}", r.under_replicated);
    let _ = writeln!(t, " Over-replicated blocks:\t{}", r.over_replicated);
    let _ = writeln!(t, " Mis-replicated blocks:\t\t{}", r.mis_replicated);
    let _ = writeln!(t, " Corrupt blocks:\t\t{}", r.corrupt);
    let _ = writeln!(t, " Missing blocks:\t\t{}", r.missing);
    let _ = writeln!(t, " Live datanodes:\t\t{}", r.live_datanodes);
    let _ = writeln!(t, " Racks:\t\t\t\t{}", r.racks);
    let _ = writeln!(t);
    let _ = writeln!(t, "The filesystem under path '{path}' is {status}");
    t
}

/// `dfs fsck`: prints the report; fails when data is missing or corrupt.
pub(crate) async fn fsck(client: &Client, path: &str, json: bool) -> CliResult {
    let r = client.fsck(path).await?;
    if json {
        print_json(&r)?;
    } else {
        print_out(&fsck_text(path, &r))?;
    }
    if r.is_healthy() {
        Ok(())
    } else {
        Err(CliError::Unhealthy(format!(
            "{path} is CORRUPT: {} missing and {} corrupt block(s)",
            r.missing, r.corrupt
        )))
    }
}

/// `dfs recover`: forces lease recovery and waits until the file is closed.
pub(crate) async fn recover(client: &Client, path: &str) -> CliResult {
    let deadline = tokio::time::Instant::now() + RECOVER_WAIT;
    let mut delay = Duration::from_millis(200);
    loop {
        if client.recover_lease(path, true).await? {
            return print_out(&format!("{path}: closed\n"));
        }
        if tokio::time::Instant::now() + delay > deadline {
            return Err(Error::Timeout {
                what: format!(
                    "lease recovery of {path} started but the file did not close within {RECOVER_WAIT:?} (is a datanode holding its last block up?)"
                ),
            }
            .into());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// `dfs admin decommission|recommission`.
pub(crate) async fn decommission(client: &Client, node: &str, decommission: bool) -> CliResult {
    // A recommission of a node seen in service (live or stale; a dead
    // one's admin state is not shown) changes nothing, and says so.
    // Best effort: a report refused or failed only loses the hint, and
    // the recommission itself says what went wrong.
    let in_service = !decommission
        && client.report().await.ok().is_some_and(|r| {
            r.datanodes.iter().any(|d| {
                (d.address == node || d.id == node)
                    && matches!(d.state, NodeState::Live | NodeState::Stale)
            })
        });
    client.decommission(node, decommission).await?;
    let what = if decommission {
        "decommissioning started (see dfs report)"
    } else if in_service {
        "was not decommissioned; nothing changed"
    } else {
        "recommissioned"
    };
    print_out(&format!("{node}: {what}\n"))
}

/// How often `dfs admin safemode wait` asks.
const SAFEMODE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// `dfs admin safemode get|enter|leave|wait`: prints `Safe mode is ON`
/// (with where it stands) or `Safe mode is OFF`, as `hdfs dfsadmin`.
pub(crate) async fn safemode(client: &Client, action: SafemodeArg) -> CliResult {
    let state = match action {
        SafemodeArg::Get => client.set_safe_mode(SafeModeAction::Get).await?,
        SafemodeArg::Enter => client.set_safe_mode(SafeModeAction::Enter).await?,
        SafemodeArg::Leave => client.set_safe_mode(SafeModeAction::Leave).await?,
        SafemodeArg::Wait => loop {
            // A namenode that is restarting is waited for too.
            match client.set_safe_mode(SafeModeAction::Get).await {
                Ok(s) if !s.on => break s,
                Ok(_) | Err(Error::Unreachable { .. } | Error::Timeout { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            tokio::time::sleep(SAFEMODE_POLL).await;
        },
    };
    if state.on {
        print_out(&format!("Safe mode is ON: {}\n", state.status))
    } else {
        print_out("Safe mode is OFF\n")
    }
}

/// How often `dfs balancer` asks how the run goes.
const BALANCER_POLL: Duration = Duration::from_secs(2);

/// `dfs balancer [--threshold PCT] [--stop]`: starts the namenode's
/// balancer and follows it until the cluster is balanced (exit 0) or
/// nothing more can move (exit 1). A stop signal stops the run, as
/// stopping `hdfs balancer` does.
pub(crate) async fn balancer(client: &Client, threshold: f64, stop_run: bool) -> CliResult {
    if stop_run {
        let s = client.balance(None, true).await?;
        return print_out(&format!(
            "balancer stopped: {} blocks ({}) moved\n",
            s.blocks_moved,
            human_size(s.bytes_moved)
        ));
    }
    let s = client.balance(Some(threshold), false).await?;
    print_out(&format!(
        "balancing: every node to within {:.1} points of the average use{}\n",
        s.threshold_pct,
        node_uses(&s)
    ))?;
    // From here a stop signal stops the run before the command exits.
    let _running = stop::CopyGuard::new();
    let mut last_moved = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(BALANCER_POLL) => {}
            sig = stop::requested_wait() => {
                client.balance(None, true).await?;
                return Err(CliError::Interrupted(sig));
            }
        }
        let s = client.balance(None, false).await?;
        if s.blocks_moved != last_moved {
            last_moved = s.blocks_moved;
            print_out(&format!(
                "moved {} blocks ({}), {} moving; average use {:.1}%\n",
                s.blocks_moved,
                human_size(s.bytes_moved),
                s.moves_in_flight,
                s.average_pct
            ))?;
        }
        if s.running {
            continue;
        }
        let summary = format!(
            "{} blocks ({}) moved{}",
            s.blocks_moved,
            human_size(s.bytes_moved),
            node_uses(&s)
        );
        return if s.outcome.starts_with("balanced") {
            print_out(&format!("{}; {summary}\n", s.outcome))
        } else {
            Err(CliError::Told(format!("{}; {summary}", s.outcome)))
        };
    }
}

/// `; 127.0.0.1:9101 25.0%, ...` for the nodes of a status.
fn node_uses(s: &BalancerStatus) -> String {
    if s.nodes.is_empty() {
        return String::new();
    }
    let list: Vec<String> = s
        .nodes
        .iter()
        .map(|(addr, pct)| format!("{addr} {pct:.1}%"))
        .collect();
    format!("; use by node: {}", list.join(", "))
}
