# Shared helpers for the benchmark scripts (sourced, not run).
# A release cluster on loopback under $BENCH_DIR, stopped on exit.

BENCH_DIR=${BENCH_DIR:-/var/tmp/dfs-bench}
BIN=${BIN:-$PWD/target/release}
NN_PORT=${NN_PORT:-19000}
export DFS_NAMENODE=127.0.0.1:$NN_PORT
PIDS=()

bench_build() { cargo build --release --bins --quiet; }

bench_stop() {
  [[ ${#PIDS[@]} -gt 0 ]] && kill -9 "${PIDS[@]}" 2>/dev/null
  wait 2>/dev/null
  PIDS=()
}

wait_log() { # file
  for _ in $(seq 1 300); do grep -q "listening on" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "server did not start: $1" >&2; tail -20 "$1" >&2; exit 1
}

# bench_cluster N_DATANODES [namenode flags...]; datanode i on 127.0.0.(10+i), rack from RACKS array if set
bench_cluster() {
  local n=$1; shift
  rm -rf "$BENCH_DIR/cluster"; mkdir -p "$BENCH_DIR/cluster/logs"
  "$BIN/namenode" --listen "127.0.0.1:$NN_PORT" --data "$BENCH_DIR/cluster/nn" --safemode-extension 0s "$@" \
    >"$BENCH_DIR/cluster/logs/nn.log" 2>&1 &
  NN_PID=$!; PIDS+=($NN_PID)
  wait_log "$BENCH_DIR/cluster/logs/nn.log"
  DN_PIDS=()
  for i in $(seq 1 "$n"); do
    local rack_args=()
    [[ -n ${RACKS[*]:-} ]] && rack_args=(--rack "${RACKS[$(((i - 1) % ${#RACKS[@]}))]}")
    "$BIN/datanode" --namenode "$DFS_NAMENODE" --listen "127.0.0.$((10 + i)):$((NN_PORT + i))" \
      --data "$BENCH_DIR/cluster/dn$i" "${rack_args[@]}" ${DN_ARGS:-} >"$BENCH_DIR/cluster/logs/dn$i.log" 2>&1 &
    DN_PIDS+=($!); PIDS+=($!)
    wait_log "$BENCH_DIR/cluster/logs/dn$i.log"
  done
  for _ in $(seq 1 300); do
    [[ $("$BIN/dfs" report --json 2>/dev/null | grep -o '"live"' | wc -l) -ge $n ]] && return 0
    sleep 0.1
  done
  echo "datanodes did not become live" >&2; exit 1
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "# (could not drop caches)"; }
now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1e6 / s }'; }
# median of the numbers on stdin; anything else (an NA of a failed step) is left out
median() { tr ' ' '\n' | grep -E '^[0-9.]+$' | sort -g | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "NA" }'; }
dd_mbps() { # dd args...: prints MB/s computed from dd's own byte count and time
  LC_ALL=C dd "$@" 2>&1 | awk '/bytes/ && /copied/ { for (i=1;i<=NF;i++) if ($i ~ /^s,?$/) t=$(i-1); printf "%.1f", $1 / 1e6 / t }'
}
