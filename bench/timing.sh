# Sourced by the benchmark scripts (bench/run.sh, bench/fuse_bench.sh): the
# page-cache drop, the timing of one phase and the description of the
# machine. Needs ROOT and BUILD (the source and build trees) and, for timed,
# RESULTS (a JSON-lines file) set.

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# timed TARGET CORPUS PHASE FILES BYTES CMD...: runs CMD, appends a result
# ("ok": false if CMD failed) and returns CMD's exit status.
timed() {
  local target="$1" corpus="$2" phase="$3" files="$4" bytes="$5"; shift 5
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  "$@" || rc=$?
  t1=$(date +%s.%N)
  python3 - "$target" "$corpus" "$phase" "$files" "$bytes" "$t0" "$t1" "$rc" >> "$RESULTS" <<'PY'
import json, sys
t, c, p, f, b, t0, t1, rc = sys.argv[1:]
s = float(t1) - float(t0)
print(json.dumps({"target": t, "corpus": c, "phase": p, "files": int(f), "bytes": int(b),
                  "seconds": round(s, 4), "files_per_s": round(int(f) / s, 1),
                  "errors": 0 if rc == "0" else 1, "ok": rc == "0"}))
PY
  return "$rc"
}

# describe_machine COMMAND: the lines every benchmark report starts with.
describe_machine() {
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command: $1"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD) ($(git -C "$ROOT" status --porcelain | wc -l) paths differ from it)"
  echo "nproc: $(nproc)"
  echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
  echo "disk: $(df -hT "$BUILD" | awk 'NR==2 {print $1 " " $2 " " $3}') ($(lsblk -dno ROTA,MODEL "$(df "$BUILD" | awk 'NR==2 {print $1}')" 2>/dev/null | tr -s ' ' || echo '?'))"
  echo "kernel: $(uname -r)"
  echo "rocksdb: $(dpkg-query -W -f='${Version}' librocksdb-dev)"
}
