#!/usr/bin/env bash
# What a machine with a GPU checks, in one go (`make gpu-check`, or this script where the
# requirements are importable): the default benchmarks on CUDA, the CUDA tests, and every chapter
# under the smoke profile with device auto (so on the GPU), synthesis last. It stops at once,
# writing nothing, where torch sees no GPU.
#
#   PY       the Python to use (default python3; make gpu-check: the project's venv)
#   OUT      where its logs and gpu_check.tgz go (default _build/gpu_check)
#
# The benchmarks run alone, for their timings; the tests and the chapters then run side by side,
# the chapters in three groups with a build folder each (a build folder takes one command at a
# time) and one shared model cache. Each stage has a time limit, so that a leased machine always
# hands back what finished. Results: benchmarks/results/cuda/, $OUT/{bench,tests,chapters}.log.
set -u
PY=${PY:-python3}
OUT=${OUT:-_build/gpu_check}
started=$(date +%s)
say() { echo "gpu_check [$(($(date +%s) - started)) s]: $*"; }

"$PY" -c "import sys, torch; torch.cuda.is_available() or sys.exit(f'gpu_check: torch {torch.__version__} sees no GPU; run it on a machine with one')" || exit 2
mkdir -p "$OUT"
"$PY" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name(0))"

timeout 300 "$PY" benchmarks/run.py --device cuda > "$OUT/bench.log" 2>&1
say "benchmarks: exit $?"
grep -E "^benchmark |Error" "$OUT/bench.log"

timeout 300 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_device.py tests/test_provenance.py > "$OUT/tests.log" 2>&1 &
tests=$!
chapters() {
    local build=$1
    shift
    for chapter in "$@"; do
        local start=$(date +%s)
        ROBINTERP_BUILD=$build timeout 300 "$PY" -m robinterp run "$chapter" --profile smoke --threads 4 > "$build.$chapter.log" 2>&1
        echo "$chapter: exit $?, $(($(date +%s) - start)) s; $(tail -1 "$build.$chapter.log")"
    done
}
chapters "$OUT/build_a" robust_models saliency_guided_training scaat > "$OUT/group_a" &
group_a=$!
chapters "$OUT/build_b" neuron_sensitivity > "$OUT/group_b" &
group_b=$!
chapters "$OUT/build_c" robust_attribution > "$OUT/group_c"
wait $group_a $group_b
mkdir -p "$OUT/build"  # synthesis reads the other chapters' executed notebooks and tables
for group in a b c; do cp -r "$OUT/build_$group/." "$OUT/build/"; done
chapters "$OUT/build" synthesis > "$OUT/group_d"
cat "$OUT"/group_? > "$OUT/chapters.log"
rm "$OUT"/group_?
cat "$OUT/chapters.log"
wait $tests
say "CUDA tests: exit $?; $(tail -1 "$OUT/tests.log")"
tar czf "$OUT/gpu_check.tgz" benchmarks/results/cuda "$OUT/build/executed" "$OUT"/build*.log
say "done; logs in $OUT"
