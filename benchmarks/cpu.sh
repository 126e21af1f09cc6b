#!/bin/bash
# Every CPU measurement of benchmarks/README.md in one command (15-32 minutes,
# on the project's 2-core machine). Run it alone: anything else on the cores
# skews the figures. Logs go to $OUT (default ./cpu_logs); the tables come last.
#   bash benchmarks/cpu.sh
set -u
OUT=${OUT:-cpu_logs}
DATA=${GAN_JAX_SHARED_DATA:-../shared/data}
mkdir -p "$OUT"
export PYTHONPATH=.:${PYTHONPATH:-} PYTHONUNBUFFERED=1

bench() {  # bench NAME SCRIPT ARGS...: one benchmark, its log kept.
  local name=$1; shift
  python "$@" 2>&1 | grep -v -i warn | tee "$OUT/$name.log"
}
bench dcgan32 benchmarks/train_step.py --presets dcgan32 --batches 64 --torch_compile --markdown
bench dcgan32_ynn benchmarks/train_step.py --presets dcgan32 --batches 64 \
  --xla_default_convolutions
bench presets benchmarks/train_step.py --presets dcgan64,sndcgan32,resnet32 --batches 64 \
  --steps 2 --repeats 3 --markdown
bench bf16 benchmarks/train_step.py --presets dcgan32 --batches 64 --compute_dtype bfloat16 \
  --markdown
bench layers benchmarks/profile_layers.py
bench conv_transpose benchmarks/conv_transpose.py
bench input_digits benchmarks/input_pipeline.py --source digits --resolution 28 --batch 64
if [ -f "$DATA/cifar10/cifar10_train.npz" ]; then
  bench input_cifar10 benchmarks/input_pipeline.py --source npz \
    --path "$DATA/cifar10/cifar10_train.npz" --resolution 32 --batch 64
fi
for n in 1 8; do
  XLA_FLAGS=--xla_force_host_platform_device_count=$n bench devices_$n \
    benchmarks/train_step.py --no_torch --steps 5 --repeats 3
done
bench mode_collapse benchmarks/mode_collapse.py --packs 1,2,4 --steps 300 --repeats 3
bench stacked_mnist benchmarks/mode_collapse.py --stacked_mnist \
  stacked_mnist,stacked_mnist_dcgan,stacked_mnist_d_quarter,stacked_mnist_d_quarter_dcgan \
  --steps 5 --repeats 3
bench eval benchmarks/eval_throughput.py
bench compile_time benchmarks/compile_time.py
bench loop_dcgan benchmarks/update_time.py --config dcgan:cifar10 --batch 64 --n_dis 2
bench loop_sndcgan benchmarks/update_time.py --config sngan:cifar10_cnn --batch 64 --n_dis 5
bench loop_wgan_gp benchmarks/update_time.py --config wgan_gp:cifar10_resnet --batch 16 \
  --repeats 3

echo '== summary =='
cat "$OUT"/{dcgan32,presets,bf16}.log | grep '^| ' | awk '!seen[$0]++'
tail -n 13 "$OUT/layers.log"
tail -n 3 "$OUT/conv_transpose.log"
tail -n 1 "$OUT/compile_time.log"
tail -n 2 "$OUT/eval.log"
tail -n 4 "$OUT/stacked_mnist.log"
echo "XLA's default convolutions: $(tail -n 1 "$OUT/dcgan32_ynn.log")"
for f in mode_collapse input_digits input_cifar10 devices_1 devices_8 loop_dcgan loop_sndcgan loop_wgan_gp; do
  [ -f "$OUT/$f.log" ] && echo "$f: $(tail -n 1 "$OUT/$f.log")"
done
