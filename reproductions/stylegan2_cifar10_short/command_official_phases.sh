#!/bin/bash
# The same short run with the preset's official lazy regularisation (reg.lazy_separate_step=True):
# 60 steps, FID every 30.
cd /work/main
python launch.py --config experiments/stylegan2_ada.py:cifar10 \
  --config.data.source=npz --config.data.path=../shared/data/cifar10/cifar10_train.npz \
  --config.train.batch_size=16 --config.train.steps=60 \
  --config.log.every_steps=10 --config.log.sample_every_steps=30 --config.checkpoint.every_steps=30 \
  --config.eval.every_steps=30 --config.eval.extractor=cnn_cifar10 --config.eval.metrics=fid \
  --config.eval.num_samples=1000 --config.eval.reference_num=10000 \
  --workdir /work/sg2_runs/cifar10_short_phases
