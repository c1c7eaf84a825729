#!/usr/bin/env bash
# The GPU check: prove the CUDA path on a machine that has a GPU but no Rust toolchain and no
# network, in one command per CUDA kernel compiler.
#
#   scripts/gpu-check.sh prepare [nvrtc|llvm|cpu ...]   # here: build, strip, compress, reference
#   scripts/gpu-check.sh run nvrtc|llvm [--budget S]    # there: every check, results in $OUT
#   scripts/gpu-check.sh run --dry-run                  # here: the same run on the CPU backend
#
# `prepare` builds the release `ela` for CUDA with the named compilers (default: nvrtc and llvm;
# `cpu` builds the CPU-only binary the dry run uses), strips and compresses each into
# gpu-kit/<compiler>/ela.xz, writes the CPU reference of one training step into
# gpu-kit/common/reference (`ela agree --write-reference`), and prints what travels: the repo's
# tracked files plus gpu-kit/common and one compiler's folder must fit in 64 MiB.
#
# `run` unpacks that compiler's binary and, within --budget seconds (default 540), writes to $OUT:
#   check.log         everything printed
#   gpu.txt           the GPU, driver, toolkit libraries found, the binary's kernel setup
#   agree.json        one training step of ResNet-20 plain / MRLA-B / ELA against the CPU reference
#   train.json        the default MNIST run for 2 epochs: summary.json with metrics.csv
#   bench-cifar.json  `ela bench --pytorch` of CIFAR ResNet-20/56/110 at batch 128
#   bench-r50.json    `ela bench --pytorch` of ImageNet ResNet-50 at batch 64, 224x224
#   steps.json        each step's status and seconds
# Each bench reports the first training step of every variant (kernel compilation and
# autotuning) apart from the timed rounds. A step that would overrun the budget is skipped and
# said so; a step that fails does not stop the others, and makes the command fail at the end.
# `--dry-run` runs the same steps with the CPU backend and small sizes (the PyTorch reference
# only where torch imports), so the kit is tested before any GPU is lent: CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=gpu-kit
LIMIT_BYTES=$((64 * 1024 * 1024))

die() { echo "gpu-check: $*" >&2; exit 1; }

feature_of() {
  case "$1" in
    nvrtc) echo "flex,cuda" ;;
    llvm) echo "flex,cuda-llvm" ;;
    cpu) echo "flex" ;;
    *) die "unknown compiler '$1' (expected nvrtc, llvm or cpu)" ;;
  esac
}

tracked_bytes() {
  git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

dir_bytes() { du -sb "$1" 2>/dev/null | cut -f1; }

prepare() {
  local compilers=("$@")
  [ ${#compilers[@]} -gt 0 ] || compilers=(nvrtc llvm)
  command -v xz >/dev/null || die "xz is needed to compress the binaries"
  local target="${CARGO_TARGET_DIR:-target}"
  mkdir -p "$KIT/common"
  for compiler in "${compilers[@]}"; do
    local features
    features="$(feature_of "$compiler")"
    echo "== building ela ($compiler: --features $features)"
    local env=()
    if [ "$compiler" != cpu ]; then
      # Burn's CUDA kernel compiler builds against LLVM; offline, Debian's stands in.
      env=(XDG_DATA_HOME="$(scripts/llvm-offline.sh)")
    fi
    env "${env[@]}" cargo build --release --locked -p ela-cli --no-default-features \
      --features "$features"
    local out="$KIT/$compiler"
    rm -rf "$out" && mkdir -p "$out"
    cp "$target/release/ela" "$out/ela"
    if [ ! -d "$KIT/common/reference" ]; then
      echo "== CPU reference of one training step"
      "$out/ela" agree --write-reference "$KIT/common/reference"
    fi
    strip "$out/ela"
    local stripped
    stripped=$(stat -c %s "$out/ela")
    xz -9e -T0 -f "$out/ela"
    {
      echo "compiler: $compiler"
      echo "features: $features"
      echo "revision: $(git rev-parse HEAD)$(git diff --quiet HEAD || echo -dirty)"
      echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), $(ldd --version | head -1)"
      echo "stripped bytes: $stripped"
      echo "sha256 of ela.xz: $(sha256sum "$out/ela.xz" | cut -d' ' -f1)"
    } >"$out/BUILD.txt"
  done
  echo "== what travels"
  local repo common total
  repo=$(tracked_bytes)
  common=$(dir_bytes "$KIT/common")
  printf '%-28s %10d bytes\n' "tracked files" "$repo" "gpu-kit/common" "$common"
  for dir in "$KIT"/*/; do
    local name
    name=$(basename "$dir")
    [ "$name" = common ] && continue
    local size
    size=$(dir_bytes "$dir")
    total=$((repo + common + size))
    printf '%-28s %10d bytes; with the repo and common: %d of %d (%s)\n' \
      "gpu-kit/$name" "$size" "$total" "$LIMIT_BYTES" \
      "$([ "$total" -le "$LIMIT_BYTES" ] && echo fits || echo 'TOO LARGE')"
    [ "$total" -le "$LIMIT_BYTES" ] || die "gpu-kit/$name does not fit in 64 MiB with the repo"
  done
}

# ---- run -------------------------------------------------------------------------------------

# Runs one named step with what is left of the budget; records its status and seconds.
STEPS=()
step() {
  local name="$1" min="$2"
  shift 2
  local now left start status
  now=$(date +%s)
  left=$((DEADLINE - now))
  if [ "$left" -lt "$min" ]; then
    echo "== $name: skipped, ${left} s of the budget left (needs about ${min} s)"
    STEPS+=("{\"step\": \"$name\", \"status\": \"skipped\", \"seconds\": 0}")
    return 0
  fi
  echo "== $name (at most ${left} s)"
  start=$(date +%s.%N)
  if timeout --kill-after=10 "$left" "$@"; then status=ok; else status="failed ($?)"; fi
  local secs
  secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  echo "== $name: $status after $secs s"
  STEPS+=("{\"step\": \"$name\", \"status\": \"$status\", \"seconds\": $secs}")
}

# Puts the CUDA toolkit's libraries (NVRTC, libdevice) where the binary looks for them.
find_toolkit() {
  local dirs=() d
  for d in /usr/local/cuda/lib64 /usr/local/cuda-*/lib64 /usr/local/cuda/targets/*/lib \
    /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu; do
    [ -d "$d" ] && dirs+=("$d")
  done
  # The pip-installed toolkit next to PyTorch (nvidia-cuda-nvrtc).
  local site
  site=$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true)
  for d in $site; do
    for lib in "$d"/nvidia/*/lib "$d"/nvidia/cu*/lib; do
      [ -d "$lib" ] && dirs+=("$lib")
    done
  done
  local nvrtc="" joined=""
  for d in "${dirs[@]}"; do
    joined="${joined:+$joined:}$d"
    if [ -z "$nvrtc" ]; then
      nvrtc=$(ls "$d"/libnvrtc.so* 2>/dev/null | head -1 || true)
    fi
  done
  export LD_LIBRARY_PATH="${joined}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local libdevice=""
  for d in "${CUDA_PATH:-}" /usr/local/cuda /usr/local/cuda-*; do
    [ -n "$d" ] && [ -f "$d/nvvm/libdevice/libdevice.10.bc" ] && { libdevice="$d"; break; }
  done
  if [ -z "$libdevice" ]; then
    libdevice=$(find / -name libdevice.10.bc -path '*nvvm/libdevice*' 2>/dev/null | head -1 || true)
    libdevice="${libdevice%/nvvm/libdevice/libdevice.10.bc}"
  fi
  [ -n "$libdevice" ] && export CUDA_PATH="$libdevice"
  echo "nvrtc: ${nvrtc:-not found}"
  echo "libdevice: ${libdevice:-not found} (CUDA_PATH)"
}

run() {
  local compiler="" dry=0 budget=540
  while [ $# -gt 0 ]; do
    case "$1" in
      --dry-run) dry=1 ;;
      --budget) budget="$2"; shift ;;
      nvrtc | llvm) compiler="$1" ;;
      *) die "run: unknown argument '$1'" ;;
    esac
    shift
  done
  local backend=cuda
  if [ "$dry" = 1 ]; then
    compiler=cpu
    backend=cpu
  fi
  [ -n "$compiler" ] || die "run: name the compiler (nvrtc or llvm), or --dry-run"
  [ -f "$KIT/$compiler/ela.xz" ] || die "no $KIT/$compiler/ela.xz: run 'scripts/gpu-check.sh prepare $compiler' first"
  [ -d "$KIT/common/reference" ] || die "no $KIT/common/reference: run 'scripts/gpu-check.sh prepare' first"
  OUT="${OUT:-$(mktemp -d)}"
  mkdir -p "$OUT"
  DEADLINE=$(($(date +%s) + budget))
  local work
  work=$(mktemp -d)
  exec > >(tee "$OUT/check.log") 2>&1

  echo "== gpu-check run: compiler $compiler, backend $backend, budget ${budget} s, results in $OUT"
  cat "$KIT/$compiler/BUILD.txt"
  local ela="$work/ela"
  if command -v xz >/dev/null; then
    xz -dc "$KIT/$compiler/ela.xz" >"$ela"
  else
    python3 -c 'import lzma, sys, shutil; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
      "$KIT/$compiler/ela.xz" "$ela"
  fi
  chmod +x "$ela"
  {
    if [ "$dry" = 1 ]; then
      echo "gpu: none (dry run on $(uname -m), backend cpu)"
    else
      nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader \
        | sed 's/^/gpu: /' || echo "gpu: nvidia-smi failed"
      find_toolkit
    fi
    echo "missing libraries: $(ldd "$ela" | grep 'not found' | tr -s ' \t' ' ' || echo none)"
    echo "build: $(tr '\n' ';' <"$KIT/$compiler/BUILD.txt")"
  } | tee "$OUT/gpu.txt"

  # Sizes: the GPU's as the issue asks; the dry run's small enough for a CPU.
  local cifar=(--depths 20,56,110 --batch-size 128) r50=(--arch imagenet --depths 50 --batch-size 64)
  local train=(--epochs 2) bench_extra=() pytorch=(--pytorch python3)
  if [ "$dry" = 1 ]; then
    cifar=(--depths 20 --batch-size 8 --quick)
    r50=(--arch imagenet --depths 18 --batch-size 2 --input 3,64,64 --quick)
    train=(--epochs 1 --limit-train 256 --limit-test 128)
    python3 -c 'import torch' 2>/dev/null || pytorch=()
  fi
  bench_extra=(--no-memory)

  step agree 30 "$ela" agree --backend "$backend" --reference "$KIT/common/reference" \
    --json "$OUT/agree.json"
  step train 60 "$ela" train --backend "$backend" "${train[@]}" --out "$work/run"
  if [ -f "$work/run/summary.json" ]; then
    python3 - "$work/run" "$OUT/train.json" <<'EOF'
import csv, json, sys
run, out = sys.argv[1], sys.argv[2]
summary = json.load(open(f"{run}/summary.json"))
summary["metrics"] = list(csv.DictReader(open(f"{run}/metrics.csv")))
json.dump(summary, open(out, "w"), indent=1)
EOF
  fi
  step bench-cifar 90 "$ela" bench --backend "$backend" "${cifar[@]}" "${bench_extra[@]}" \
    "${pytorch[@]}" --json "$OUT/bench-cifar.json"
  step bench-r50 60 "$ela" bench --backend "$backend" "${r50[@]}" "${bench_extra[@]}" \
    "${pytorch[@]}" --json "$OUT/bench-r50.json"

  local IFS=,
  echo "[${STEPS[*]}]" >"$OUT/steps.json"
  echo "== done: $(cat "$OUT/steps.json")"
  rm -rf "$work"
  # Every step ran or was skipped for time; a failed one fails the check (after the rest ran).
  if grep -q '"failed' "$OUT/steps.json"; then
    echo "gpu-check: a step failed" >&2
    return 1
  fi
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  *) die "usage: scripts/gpu-check.sh prepare [nvrtc|llvm|cpu ...] | run nvrtc|llvm|--dry-run [--budget S]" ;;
esac
