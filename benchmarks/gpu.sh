#!/bin/bash
# Every GPU measurement of benchmarks/README.md in one command, for a lent GPU
# machine with JAX, Flax, Optax, Orbax and PyTorch installed (ml-collections and
# Grain come as wheels in .whl/ when missing). Each run is bounded, its log kept
# under $OUT (or ./gpu_logs), and the summary lines are printed last.
#   bash benchmarks/gpu.sh
set -u
OUT=${OUT:-gpu_logs}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c 'import jax, flax, optax, torch; print("jax", jax.__version__, "flax", flax.__version__,
  "optax", optax.__version__, "torch", torch.__version__, jax.devices())' | tee -a "$OUT/gpu.txt"

run() {  # run NAME SECONDS ARGS...: one benchmark invocation, bounded.
  local name=$1 seconds=$2; shift 2
  timeout "$seconds" python3 benchmarks/train_step.py "$@" 2>&1 | grep -v Warning \
    | tee "$OUT/$name.log"
}
run f32_torch 240 --presets dcgan32,resnet32 --batches 64,256 --torch_compile --repeats 5 --steps 20
run flax_conv 80 --presets dcgan32,resnet32 --batches 64,256 --no_torch --flax_conv \
  --repeats 5 --steps 20
run bf16 80 --presets dcgan32,resnet32 --batches 64,256 --no_torch --compute_dtype bfloat16 \
  --repeats 5 --steps 20
run sndcgan 80 --presets sndcgan32 --batches 64 --repeats 5 --steps 20

echo '== summary =='
cat "$OUT/gpu.txt"
for f in f32_torch flax_conv bf16 sndcgan; do
  echo "-- $f"; grep -E '^(device|[a-z0-9]+ batch|  torch|torch.compile failed)' "$OUT/$f.log"
done
