#!/usr/bin/env bash
# The must-show figures of issue #17 (bf16 inference), each printed after the command that made
# it. Run on a quiet machine from the repository root after building semat and semat_models_bench
# (cmake -DSEMAT_BUILD_BENCHMARKS=ON):
#
#   bench/bf16_figures.sh [build-dir]
#
# Optional inputs (the step is skipped when missing):
#   SAM_VIT_B=ckpt.pth     a SAM ViT-B checkpoint (random weights will do: all figures are timings
#                          and memory). One way, with the official code on PYTHONPATH:
#                          python3 -c "import torch; from segment_anything import sam_model_registry as r;
#                                      torch.save(r['vit_b']().state_dict(), 'sam_vit_b_random.pth')"
#   OFFICIAL=1             also time the official predictor (python3 with torch 1.13 and
#                          segment_anything importable) as a whole process against `semat segment`,
#                          interleaved (hyperfine when installed): OFFICIAL_DRIVER=script.py that
#                          takes <ckpt> <image> <x0,y0,x1,y1> <threads>, loads
#                          sam_model_registry['vit_b'], runs SamPredictor.set_image and predict(box).
#   THREADS=2              threads for every figure (SEMAT_THREADS / OMP_NUM_THREADS).
#
# FLOPs per encoder pass (TFLOP_per_pass in the encoder bench): 2 x multiply-adds of the patch
# embedding, every block's qkv / proj / MLP linears on all tokens (the windowed blocks on the padded
# 70 x 70 grid), q k^T and attn v per window (14 x 14 keys) or over all 4096 tokens (global
# blocks), and the neck's 1x1 and 3x3 convolutions (encoder_flops() in bench_sam.cpp). The
# relative-position terms (< 1%), norms, softmax and GELU are not counted. ViT-B 0.967, ViT-L
# 2.976, ViT-H 5.946 TFLOP. The fraction of the bf16 GEMM rate = encoder GFLOP/s divided by
# BM_GemmRateBf16/linear's GFLOP/s on ViT-B's MLP shape (4096 x 768 x 3072).
set -u
B=${1:-build}
T=${THREADS:-2}
export SEMAT_THREADS=$T OMP_NUM_THREADS=$T
BENCH=$B/bin/semat_models_bench
SEMAT=$B/bin/semat
IMG=examples/astronaut.png
BOX=$(cat examples/astronaut.box)
say() { printf '\n$ %s\n' "$*"; }

echo "== $(date -u '+%F %T UTC'), $(nproc) CPUs, threads $T, load: $(cut -d' ' -f1-3 /proc/loadavg)"

say "$BENCH --benchmark_filter='GemmRateBf16/linear|BM_GemmRate/4096/768/3072'"
gemm=$("$BENCH" --benchmark_filter='GemmRateBf16/linear/4096/768/3072|BM_GemmRate/4096/768/3072' 2>/dev/null)
echo "$gemm" | grep '^BM_'
bf16_rate=$(echo "$gemm" | grep 'GemmRateBf16/linear' | sed -n 's/.*GFLOPs=\([0-9.]*\)\([GT]\).*/\1 \2/p' |
            awk '{print ($2=="T") ? $1*1000 : $1}')
echo "bf16 GEMM rate: ${bf16_rate} GFLOP/s"

for m in vit_b vit_l vit_h; do
  for p in "" _bf16; do
    say "$BENCH --benchmark_filter='SamImageEncoder/${m}${p}/'"
    line=$("$BENCH" --benchmark_filter="SamImageEncoder/${m}${p}/" 2>/dev/null | grep '^BM_')
    echo "$line"
    rate=$(echo "$line" | sed -n 's/.*GFLOPs=\([0-9.]*\)\([GT]\).*/\1 \2/p' | awk '{print ($2=="T") ? $1*1000 : $1}')
    [ -n "$rate" ] && [ -n "$bf16_rate" ] &&
      awk -v r="$rate" -v g="$bf16_rate" -v n="${m}${p}" 'BEGIN{printf "%s: %.0f GFLOP/s = %.0f%% of the bf16 GEMM rate\n", n, r, 100*r/g}'
  done
done

say "$BENCH --benchmark_filter='BM_Semat/vit_l_bf16/1'"
"$BENCH" --benchmark_filter='BM_Semat/vit_l_bf16/1' 2>/dev/null | grep '^BM_'

say "$BENCH --benchmark_filter='SamEncoderProfile/vit_b_bf16'   (one thread; where the time goes)"
"$BENCH" --benchmark_filter='SamEncoderProfile/vit_b_bf16' 2>&1 | grep -v '^\(BM_\|---\|Bench\|Run\|Load\|\*\*\*\|20\)'

peak() {  # peak RSS (MB) and wall time of one command
  /usr/bin/time -v "$@" > /dev/null 2> /tmp/bf16_figures.time
  awk '/Maximum resident/{rss=$6} /Elapsed \(wall/{w=$8} END{printf "peak RSS %.0f MB, wall %s\n", rss/1024, w}' /tmp/bf16_figures.time
}
out=$(mktemp -d)
if [ -n "${SAM_VIT_B:-}" ]; then
  for p in fp32 bf16; do
    say "/usr/bin/time -v $SEMAT segment $IMG --sam \$SAM_VIT_B --box $BOX --precision $p --out $out/seg"
    peak "$SEMAT" segment "$IMG" --sam "$SAM_VIT_B" --box "$BOX" --precision "$p" --out "$out/seg"
    say "/usr/bin/time -v $SEMAT matte $IMG --sam \$SAM_VIT_B --box $BOX --precision $p --out $out/matte"
    peak "$SEMAT" matte "$IMG" --sam "$SAM_VIT_B" --box "$BOX" --precision "$p" --out "$out/matte"
  done
fi
for p in fp32 bf16; do
  say "/usr/bin/time -v $SEMAT matte $IMG --prior isnet --precision $p --out $out/isnet"
  peak "$SEMAT" matte "$IMG" --prior isnet --precision "$p" --out "$out/isnet"
done

if [ -n "${OFFICIAL:-}" ] && [ -n "${SAM_VIT_B:-}" ] && [ -n "${OFFICIAL_DRIVER:-}" ]; then
  seg="$SEMAT segment $IMG --sam $SAM_VIT_B --box $BOX --precision bf16 --out $out/seg"
  off="python3 $OFFICIAL_DRIVER $SAM_VIT_B $IMG $BOX $T"
  if command -v hyperfine > /dev/null; then
    say "hyperfine -w 1 -r 3 '$seg' '$off'"
    hyperfine -N -w 1 -r 3 "$seg" "$off"
  else
    for i in 1 2 3; do
      say "$seg"; peak $seg
      say "$off"; peak $off
    done
  fi
fi
rm -rf "$out"
