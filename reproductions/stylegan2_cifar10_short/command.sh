#!/bin/bash
# A short StyleGAN2-ADA CIFAR-10 run on this CPU (#17): the cifar10 preset at batch 16.
cd /work/main
python launch.py --config experiments/stylegan2_ada.py:cifar10 \
  --config.data.source=npz --config.data.path=../shared/data/cifar10/cifar10_train.npz \
  --config.train.batch_size=16 --config.train.steps=90 \
  --config.log.every_steps=10 --config.log.sample_every_steps=30 --config.checkpoint.every_steps=30 \
  --config.eval.every_steps=30 --config.eval.extractor=cnn_cifar10 --config.eval.metrics=fid \
  --config.eval.num_samples=1000 --config.eval.reference_num=10000 \
  --workdir /work/sg2_runs/cifar10_short
