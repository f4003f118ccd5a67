#!/usr/bin/env bash
# Mutation testing of srzoo's core modules with mutmut (by hand; not part of CI).
#
#   pip install 'mutmut==2.5.1'
#   tools/mutation.sh                       # every core module below
#   tools/mutation.sh convert/check hub/registry   # some of them
#   BUDGET_S=900 tools/mutation.sh hub/transfer    # wall-clock cap per module (default 1200 s)
#
# Each module is mutated against the test files that cover it (MODULE_TESTS below), never
# the whole suite per mutant, in a scratch copy of the tracked tree (mutmut 2 edits files in
# place; the working tree is never touched). Results: $OUT/<module>.txt (mutmut's survivors
# list) and one summary line per module in $OUT/summary.txt; `cd $WORK/<module> && mutmut
# show ID` prints a survivor's diff. Record the scores and every survivor's verdict (killed by
# a new test, or equivalent and why) in docs/testing.md.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python}"
budget="${BUDGET_S:-1200}"
work="${MUTATION_DIR:-${TMPDIR:-/tmp}/srzoo-mutation}"
out="${MUTATION_OUT:-$work/results}"
shared="${SRZOO_SHARED:-$(cd "$root/.." && pwd)/shared}"

# module (under srzoo/, without .py) -> the test files that exercise it (fast ones first: -x stops
# at the first failure, so a mutant is usually killed in a second or two)
declare -A MODULE_TESTS=(
  [convert/check]="tests/convert/test_verification_negative.py tests/convert/test_golden.py"
  [hub/registry]="tests/hub/test_registry.py"
  [hub/manifest]="tests/hub/test_registry.py"
  [hub/cache]="tests/hub/test_download.py tests/hub/test_faults_disk.py tests/hub/test_faults_network.py"
  [hub/download]="tests/hub/test_download.py tests/hub/test_faults_network.py"
  [hub/transfer]="tests/hub/test_faults_network.py tests/hub/test_download.py"
  [jobs/resize]="tests/jobs/test_resize.py tests/jobs/test_batch.py"
  [jobs/batch]="tests/jobs/test_batch.py"
  [runtime/pipeline]="tests/runtime/test_tiling.py tests/runtime/test_upscale.py tests/runtime/test_faults_images.py"
  [runtime/imageio]="tests/runtime/test_faults_images.py tests/runtime/test_upscale.py"
  [evaluate/metrics]="tests/evaluate/test_metrics.py tests/evaluate/test_ms_ssim.py"
  [evaluate/benchmark]="tests/evaluate/test_bench.py"
  [cli]="tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/cli/test_cli.py tests/cli/test_cli_upscale.py"
)
ORDER=(convert/check hub/registry hub/manifest jobs/resize hub/transfer hub/download hub/cache
       runtime/imageio runtime/pipeline evaluate/metrics evaluate/benchmark jobs/batch cli)

mods=("$@")
[ ${#mods[@]} -eq 0 ] && mods=("${ORDER[@]}")
"$py" -c 'import mutmut' 2>/dev/null || { echo "mutation.sh: needs mutmut: pip install 'mutmut==2.5.1'" >&2; exit 1; }
mkdir -p "$work" "$out"

for mod in "${mods[@]}"; do
  tests="${MODULE_TESTS[$mod]:-}"
  [ -n "$tests" ] || { echo "mutation.sh: unknown module $mod (known: ${ORDER[*]})" >&2; exit 1; }
  src="srzoo/$mod"; [ -d "$root/$src" ] || src="$src.py"
  name="${mod//\//.}"
  dst="$work/$name"
  rm -rf "$dst"; mkdir -p "$dst"
  # the tracked files as they are in the working tree (committed or not)
  (cd "$root" && git ls-files -z | xargs -0 cp --parents -t "$dst")
  existing=""; for t in $tests; do [ -e "$dst/$t" ] && existing="$existing $t"; done
  runner="$py -m pytest -x -q -p no:cacheprovider -p no:randomly$existing"
  echo "== $src against$existing (budget ${budget}s)"
  start=$(date +%s)
  # PYTHONPATH first: the copy's srzoo, not an editable install's
  (cd "$dst" && SRZOO_SHARED="$shared" PYTHONPATH="$dst" OMP_NUM_THREADS=1 \
     timeout --signal=INT "$budget" "$py" -m mutmut run --paths-to-mutate "$src" --runner "$runner" \
       --tests-dir tests --no-progress --simple-output >"$out/$name.log" 2>&1)
  secs=$(( $(date +%s) - start ))
  (cd "$dst" && "$py" -m mutmut results >"$out/$name.txt" 2>&1)
  "$py" - "$dst/.mutmut-cache" "$mod" "$secs" >>"$out/summary.txt" <<'EOF'
import sqlite3, sys
db, mod, secs = sys.argv[1], sys.argv[2], sys.argv[3]
rows = dict(sqlite3.connect(db).execute("select status, count(*) from Mutant group by status").fetchall())
killed, survived = rows.get("ok_killed", 0), rows.get("bad_survived", 0)
timeout, suspicious = rows.get("bad_timeout", 0), rows.get("ok_suspicious", 0)
untested = rows.get("untested", 0)
done = killed + survived + timeout + suspicious
score = 100.0 * (killed + timeout + suspicious) / done if done else float("nan")
print(f"{mod}: {done} mutants run ({untested} not reached in {secs}s): killed {killed}, timeout {timeout}, "
      f"suspicious {suspicious}, survived {survived}; score {score:.1f}%")
EOF
  tail -1 "$out/summary.txt"
done
