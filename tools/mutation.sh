#!/usr/bin/env bash
# Mutation testing of srzoo's core modules with mutmut 3 (by hand; not part of CI).
#
#   pip install 'mutmut==3.8.1'
#   tools/mutation.sh                               # every core module below
#   tools/mutation.sh convert/check hub/registry    # some of them
#   BUDGET_S=900 tools/mutation.sh hub/transfer     # wall-clock cap per module (default 1200 s)
#   MUTANTS='srzoo.cli.x_* srzoo.cli._format.*' tools/mutation.sh cli   # a slice: mutant names or globs
#   MUTANTS='x_tiles* x_budget_tile*' tools/mutation.sh runtime/pipeline   # (without the srzoo. prefix:
#                                                   # the module's own prefix is added)
#   ISOLATION=forkserver tools/mutation.sh cli     # when the tests run networks (see below)
#   TIMEOUT_MULTIPLIER=4 tools/mutation.sh hub/transfer   # hung mutants end sooner (mutmut's default 15)
#   TESTS='tests/x.py tests/y.py::test_z' tools/mutation.sh cli/models   # other tests than MODULE_TESTS
#
# Each module is mutated against the test files that cover it (MODULE_TESTS below), never the
# whole suite: mutmut first runs those files once to record which test reaches which function,
# then runs, for each mutant, only the tests that reach the mutated function (in a forked
# child, MAX_CHILDREN at a time, default 2). It works in a scratch copy of the tracked tree
# ($WORK/<module>, with its own setup.cfg [mutmut]); the working tree is never touched.
# Results: one line per module in $OUT/summary.txt, the survivors in $OUT/<module>.txt;
# `cd $WORK/<module> && mutmut show NAME` prints a survivor's diff. Record the scores and every
# survivor's verdict (killed by a new test, or equivalent and why) in docs/testing.md.
# Re-check survivors against tests written since, one by one: tools/recheck.py RUN_DIR NAMES TESTS...
# Re-run every "timeout" alone (under load many are slow survivors, not hangs).
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
  # the readers of untrusted model files: crafted files, real checkpoints, and the fuzzers
  [convert/torchload]="tests/convert/test_hostile_pth.py tests/fuzz/test_fuzz_readers.py tests/convert/test_convert_torch.py"
  [convert/safetensors]="tests/convert/test_hostile_safetensors_pb.py tests/fuzz/test_fuzz_readers.py tests/convert/test_convert_torch.py"
  [hub/registry]="tests/hub/test_registry_lookup.py tests/hub/test_registry.py"
  [hub/manifest]="tests/hub/test_manifest_schema.py tests/hub/test_registry.py"
  [hub/cache]="tests/hub/test_cache_store.py tests/hub/test_fetch_artifact.py"
  [hub/download]="tests/hub/test_fetch_artifact.py tests/hub/test_download.py"
  [hub/transfer]="tests/hub/test_transfer.py"  # test_faults_network.py: end to end, 2x slower per mutant
  [jobs/resize]="tests/jobs/test_resize.py"  # upscale_to runs the built-in model there; test_batch.py: too slow per mutant
  # jobs/batch: the serial cases only; the Dask cluster and process-pool cases (90 s of the 120 s) are too
  # slow per mutant: run them with JOBS_BATCH_TESTS=tests/jobs/test_batch.py for run_batch's executors
  [jobs/batch]="${JOBS_BATCH_TESTS:-tests/jobs/test_batch_units.py tests/jobs/test_batch_plan.py tests/jobs/test_batch_worker.py tests/jobs/test_batch.py::test_worker_without_the_model_copies_the_clients_verified_file tests/jobs/test_batch.py::test_plan_checks_everything_before_any_work tests/jobs/test_batch.py::test_cli_skip_existing_redoes_nothing tests/jobs/test_batch.py::test_one_side_given_rounds_the_other_to_the_nearest_pixel tests/jobs/test_batch.py::test_fsspec_urls_in_and_out tests/jobs/test_batch.py::test_upscale_to_runs_the_chosen_scale_then_shrinks tests/jobs/test_batch.py::test_any_scale_runs_the_next_model_scale_then_area_resize tests/jobs/test_batch.py::test_any_size_in_batch_mode tests/jobs/test_batch.py::test_a_job_whose_worker_always_dies_runs_three_times_by_default}"
  [runtime/pipeline]="tests/runtime/test_pipeline_values.py tests/runtime/test_pipeline_more.py tests/runtime/test_pipeline_units.py tests/runtime/test_tiling.py tests/runtime/test_upscale.py tests/runtime/test_faults_images.py tests/runtime/test_memory_budget.py::test_budget_rules_and_one_line_errors"  # not test_memory_budget.py's peak-memory test (fails under mutmut's trampolines), not test_fork.py (its grandchild hangs inside a mutmut child)
  [runtime/imageio]="tests/runtime/test_imageio_values.py tests/runtime/test_faults_images.py tests/runtime/test_photo_meta.py"
  [evaluate/metrics]="tests/evaluate/test_metrics_edges.py tests/evaluate/test_metrics.py tests/evaluate/test_ms_ssim.py"
  [evaluate/benchmark]="tests/evaluate/test_bench_edges.py tests/evaluate/test_bench.py"
  # the package's core: planning, timing, rows / degradation, scoring, image sets; test_real_models_json
  # runs real networks (cv2.dnn hangs in mutmut's forked child: every survivor cost a 66 s timeout)
  [evaluate/benchmark/runner]="tests/evaluate/test_bench_edges.py tests/evaluate/test_bench.py !tests/evaluate/test_bench.py::test_real_models_json"
  [evaluate/benchmark/protocols]="tests/evaluate/test_bench_edges.py tests/evaluate/test_bench.py !tests/evaluate/test_bench.py::test_real_models_json"
  # the cli, one module per command (a slice each: their tests run real commands). Every command's
  # --help is compared with docs/cli.md (test_cli_reference.py), argument errors with one line
  [cli]="tests/cli/test_cli_reference.py tests/cli/test_cli_main.py tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/cli/test_cli.py tests/cli/test_cli_upscale.py tests/cli/test_hostile_outputs.py tests/hub/test_catalog_load.py"  # test_upscale_memory_flag.py: its autotune store is not written under mutmut
  [cli/_format]="tests/cli/test_cli_main.py tests/cli/test_cli.py tests/cli/test_cli_errors.py"
  [cli/models]="tests/cli/test_cli_reference.py tests/cli/test_cli_main.py tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/cli/test_cli.py tests/runtime/test_builtin.py tests/runtime/test_backends.py tests/hub/test_derived_trust.py tests/hub/test_faults_network.py tests/runtime/test_precision_int8.py tests/cli/test_cli_models_more.py tests/hub/test_omdb.py::test_manual_host_message_and_from_file !tests/runtime/test_builtin.py::test_readme_first_command_offline_with_empty_cache !tests/runtime/test_backends.py::test_opencv_alone_without_onnxruntime_or_openvino"  # those two run srzoo in a subprocess outside the run's folder: mutmut's trampolines there find no setup.cfg
  [cli/upscale]="tests/cli/test_cli_reference.py tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/cli/test_cli_upscale.py tests/cli/test_hostile_outputs.py tests/runtime/test_model_path.py tests/runtime/test_photo_meta.py tests/jobs/test_bigimage.py tests/jobs/test_video.py tests/cli/test_cli_upscale_more.py tests/jobs/test_video_cli.py"  # test_upscale_memory_flag.py: see [cli]; re-check its mutants (`run` 9, 17) one pytest per mutant
  [cli/bench]="tests/cli/test_cli_reference.py tests/cli/test_cli_bench_more.py tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/evaluate/test_bench.py tests/evaluate/test_compare.py tests/hub/test_mirror_folders.py !tests/evaluate/test_bench.py::test_real_models_json"
  [cli/convert]="tests/cli/test_cli_reference.py tests/cli/test_cli_inspect_export.py tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/cli/test_hostile_outputs.py tests/convert/test_export.py tests/convert/test_convert_registry.py tests/convert/test_convert_torch.py"
  [cli/catalog]="tests/cli/test_cli_reference.py tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/hub/test_catalog_load.py tests/hub/test_omdb.py"
  [cli/train]="tests/cli/test_cli_reference.py tests/cli/test_cli_train_args.py tests/train/test_cli_train_options.py tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/train/test_train.py"
  [cli/compare]="tests/cli/test_cli_reference.py tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/evaluate/test_compare.py"
  [cli/serve]="tests/cli/test_cli_reference.py tests/cli/test_cli_arguments.py tests/cli/test_cli_errors.py tests/serve/test_serve_cli.py tests/serve/test_serve_cli_options.py"
)
ORDER=(convert/check convert/torchload convert/safetensors hub/registry hub/manifest jobs/resize hub/transfer hub/download hub/cache
       runtime/imageio runtime/pipeline evaluate/metrics evaluate/benchmark jobs/batch
       cli cli/_format cli/models cli/upscale cli/bench cli/convert cli/catalog cli/train cli/compare cli/serve)

mods=("$@")
[ ${#mods[@]} -eq 0 ] && mods=("${ORDER[@]}")
"$py" -c 'import mutmut' 2>/dev/null || { echo "mutation.sh: needs mutmut: pip install 'mutmut==3.8.1'" >&2; exit 1; }
children="${MAX_CHILDREN:-2}"
mkdir -p "$work" "$out"

for mod in "${mods[@]}"; do
  tests="${TESTS:-${MODULE_TESTS[$mod]:-}}"  # TESTS='file file::test !file::test' overrides the mapping
  [ -n "$tests" ] || { echo "mutation.sh: unknown module $mod (known: ${ORDER[*]})" >&2; exit 1; }
  src="srzoo/$mod"; [ -d "$root/$src" ] || src="$src.py"
  name="${mod//\//.}"
  dst="$work/$name"
  rm -rf "$dst"; mkdir -p "$dst"
  # the tracked files as they are in the working tree (committed or not)
  (cd "$root" && git ls-files -z | xargs -0 cp --parents -t "$dst")
  # a "!FILE::TEST" entry deselects one test (e.g. one that runs cv2.dnn, which hangs in a forked child)
  existing=""; deselect=""
  set -f; for t in $tests; do
    case "$t" in
      !*) deselect="$deselect ${t#!}" ;;
      *) [ -e "$dst/${t%%::*}" ] && existing="$existing $t" ;;
    esac
  done; set +f
  {
    echo "[mutmut]"
    echo "source_paths=srzoo/"
    # the manifests; docs/cli.md and the tool that writes it (tests/cli/test_cli_reference.py); the
    # example image and the published results (tests/runtime/test_builtin.py), the README
    echo "also_copy="; for f in registry/ docs/ tools/ examples/ bench/ README.md CHANGELOG.md pyproject.toml; do echo "    $f"; done
    # ISOLATION=forkserver: children forked from a process that only collected the tests, for
    # modules whose tests run a network (cv2.dnn crashes or hangs in a child forked after one ran)
    echo "process_isolation=${ISOLATION:-fork}"
    # a mutant that makes a test wait (a watchdog, a socket) ends at (time of its tests + 1 s) x this
    echo "timeout_multiplier=${TIMEOUT_MULTIPLIER:-15}"
    echo "pytest_add_cli_args_test_selection="; for t in $existing; do echo "    $t"; done
    [ -z "$deselect" ] || { echo "pytest_add_cli_args="; for t in $deselect; do echo "    --deselect=$t"; done; }
    # only this module is mutated: every other source file is copied as it is
    echo "do_not_mutate="
    (cd "$root" && git ls-files 'srzoo/*.py') | grep -v -x -e "$src" -e "$src/.*" | sed 's/^/    /'
  } >"$dst/setup.cfg"
  pattern="srzoo.${mod//\//.}."; [ -d "$root/srzoo/$mod" ] && pattern="srzoo.${mod//\//.}"
  globs="${pattern}*"
  [ "$mod" = cli ] && globs="srzoo.cli.x_*"  # the package's own __init__ (main, parser); each command is cli/NAME
  if [ -n "${MUTANTS:-}" ]; then  # full names (srzoo.…) as given, others under this module's prefix
    globs=""; set -f; for g in $MUTANTS; do case "$g" in srzoo.*) globs="$globs $g" ;; *) globs="$globs $pattern$g" ;; esac; done; set +f
  fi
  echo "== $src ($globs) against$existing (budget ${budget}s)"
  start=$(date +%s)
  # one thread per library: mutmut forks a child per mutant, and a thread pool (OpenMP, OpenCV)
  # started before the fork deadlocks in the child
  (set -f; cd "$dst" && SRZOO_SHARED="$shared" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENCV_FOR_THREADS_NUM=1 \
     timeout --signal=INT "$budget" "$py" -m mutmut run $globs --max-children "$children" \
       >"$out/$name.log" 2>&1)
  secs=$(( $(date +%s) - start ))
  (cd "$dst" && "$py" -m mutmut results >"$out/$name.txt" 2>&1)
  (cd "$dst" && "$py" -m mutmut export-cicd-stats >/dev/null 2>&1)
  "$py" - "$dst/mutants/mutmut-cicd-stats.json" "$mod" "$secs" >>"$out/summary.txt" <<'EOF'
import json, sys
path, mod, secs = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    st = json.load(open(path))
except OSError:
    print(f"{mod}: no results (see the log)")
    raise SystemExit
killed, survived, timeout = st.get("killed", 0), st.get("survived", 0), st.get("timeout", 0)
suspicious, no_tests = st.get("suspicious", 0), st.get("no_tests", 0)
total, skipped = st.get("total", 0), st.get("not_checked", 0)
done = killed + survived + timeout + suspicious + no_tests
score = 100.0 * (killed + timeout) / done if done else float("nan")
print(f"{mod}: {done} of {total} mutants checked in {secs}s ({skipped} not reached): killed {killed}, "
      f"timeout {timeout}, suspicious {suspicious}, no tests {no_tests}, survived {survived}; "
      f"score {score:.1f}%")
EOF
  tail -1 "$out/summary.txt"
done
