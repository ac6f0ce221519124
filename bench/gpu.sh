#!/usr/bin/env bash
# The GPU figures in BENCHMARKS.md, in one run on a CUDA machine whose Python already has torch,
# torchvision, triton, numpy, click, pyyaml and tqdm (no bpy: the inputs are made beforehand here):
#
#   SYNTHACT_FIXTURES=../shared/data .venv/bin/python bench/flow_torch.py --save-inputs .dev/pairs.npz
#   .venv/bin/synthact render-clips --out .dev/trainroot --classes ucf25 --total 50 --frames 16 --seed 5
#   pip download opencv-contrib-python-headless==4.11.0.86 (for that Python) into .dev/
#   bash bench/gpu.sh OUTDIR [flow|train|all]
set -uo pipefail
out=${1:-.}
parts=${2:-all}
here=$(cd "$(dirname "$0")/.." && pwd)
if ls "$here"/.dev/opencv_contrib*.whl >/dev/null 2>&1; then   # OpenCV's TV-L1 (the reference) is contrib-only
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$here"/.dev/opencv_contrib*.whl
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$here/src:$here PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, torchvision, triton, cv2; print('torch', torch.__version__, 'torchvision', torchvision.__version__,
'triton', triton.__version__, 'opencv', cv2.__version__, 'optflow', hasattr(cv2, 'optflow'))" | tee -a "$out/gpu.txt"
[[ $parts == train ]] || timeout 330 python3 "$here/bench/flow_torch.py" --inputs "$here/.dev/pairs.npz" --device cuda --batches 64,256,512 \
    --repeat 3 --clips 64 --profile 2>&1 | tee "$out/flow.txt"
# --compile: torch.compile's ResNet-50 TSN against eager (train-tsn --compile); compiling takes a minute or two
[[ $parts == flow ]] || timeout 420 python3 "$here/bench/train.py" --device cuda --backbone resnet50 --batch 64 --steps 20 \
    --workers 14 --root "$here/.dev/trainroot" --compile 2>&1 | tee "$out/train.txt"
