#!/usr/bin/env bash
# Training-step throughput, ours against PyTorch on the same machine, measured
# in alternating rounds so that both sides see the same load. Prints images/s
# per round and the median ratio ours/PyTorch for each model.
#
#   scripts/bench_vs_pytorch.sh [rounds=5] [steps=30] [presets=tiny,small]
#
# Needs PyTorch (`pip install torch`). For statistically careful figures of our
# side alone, use the criterion bench: cargo bench -p repopt-train --bench train_step
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-30}
presets=${3:-tiny,small}
threads=${THREADS:-$(nproc)}
python3 -c 'import torch' 2>/dev/null || { echo "PyTorch is not installed (pip install torch)" >&2; exit 1; }
cargo build --release -q -p repopt-train --example step_loop
ours=target/release/examples/step_loop
log=$(mktemp)
for round in $(seq 1 "$rounds"); do
  for preset in ${presets//,/ }; do
    for arch in repopt-vgg repvgg; do
      key="${arch//-/_}_${preset}_b64"
      ips=$(RAYON_NUM_THREADS=$threads "$ours" "$arch" "$preset" "$steps" | cut -d' ' -f1)
      echo "ours $key $ips" | tee -a "$log"
    done
  done
  python3 scripts/pytorch_train_step.py --steps "$steps" --threads "$threads" --presets "$presets" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); [print("pytorch", k, v) for k, v in d.items() if k.endswith("_b64")]' \
    | tee -a "$log"
done
python3 - "$log" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for side, key, v in rows:
    by.setdefault(key, {}).setdefault(side, []).append(float(v))
print(f"\n{'step (batch 64)':<26}{'ours img/s':>12}{'PyTorch img/s':>15}{'ours/PyTorch':>14}")
for key, d in by.items():
    o, p = statistics.median(d["ours"]), statistics.median(d["pytorch"])
    print(f"{key:<26}{o:>12.0f}{p:>15.0f}{o / p:>14.2f}")
for preset in sorted({k.split("_")[-2] for k in by}):
    a, b = by.get(f"repopt_vgg_{preset}_b64"), by.get(f"repvgg_{preset}_b64")
    if a and b:
        print(f"RepOpt-VGG / RepVGG training speed ({preset}): ours {statistics.median(a['ours']) / statistics.median(b['ours']):.2f}x, "
              f"PyTorch {statistics.median(a['pytorch']) / statistics.median(b['pytorch']):.2f}x")
PY
rm -f "$log"
