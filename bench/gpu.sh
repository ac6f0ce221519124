#!/usr/bin/env bash
# The GPU figures in BENCHMARKS.md, in one run on a CUDA machine whose Python already has torch,
# torchvision, triton, numpy, click, pyyaml and tqdm (no bpy: the inputs are made beforehand here):
#
#   SYNTHACT_FIXTURES=../shared/data .venv/bin/python bench/flow_torch.py --save-inputs .dev/pairs.npz
#   .venv/bin/render-clips --out .dev/looproot --classes ucf25 --total 1500 --frames 8 --size 170x128 --seed 5 --workers 2
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
# flow (issue 16), about 4 minutes: (1) extract-flow's tvl1-torch path end to end on a 1,000-clip root
# (16 pairs a clip) from a fresh process, so CUDA start-up, Triton compiles and the writer processes'
# start are inside the timed window, with where the time went, then the kernels' own rate at the same
# batch for the ratio; (2) EPE against OpenCV with float32 and float16 iteration state, the kernels'
# rate for both, the profile and the achieved memory bandwidth against the device's peak.
# FLOW_SMOKE=1 runs the same two commands on the CPU with tiny sizes (PY=.venv/bin/python there).
py=${PY:-python3}
if [[ ${FLOW_SMOKE:-0} == 1 ]]; then
    fdev=(--device cpu --size 48x36 --limit 2) fe2e=(--clips 3 --frames-per-clip 3) fb=2 frep=1 ft=1200
else
    fdev=(--device cuda) fe2e=(--clips 1000 --frames-per-clip 17) fb=512 frep=3 ft=150
fi
if [[ $parts != train ]]; then
    timeout $ft $py "$here/bench/flow_torch.py" --inputs "$here/.dev/pairs.npz" "${fdev[@]}" "${fe2e[@]}" --batches $fb \
        --repeat $frep --e2e-only --no-device-decode --breakdown --kernel-rate 2>&1 | tee "$out/flow_e2e.txt"
    timeout $ft $py "$here/bench/flow_torch.py" --inputs "$here/.dev/pairs.npz" "${fdev[@]}" --batches $fb --repeat $frep \
        --clips 0 --state-dtypes float32,float16 --profile 2>&1 | tee "$out/flow.txt"
fi
# --compile: torch.compile's ResNet-50 TSN against eager (train-tsn --compile); compiling takes a minute or two
# and train-tsn's own loop on a real-size epoch (--loop: 1,500 clips, ~1,200 in training, checkpoints and
# per-epoch validation included): the share of its wall time that is not training steps
[[ $parts == flow ]] || timeout 420 python3 "$here/bench/train.py" --device cuda --backbone resnet50 --batch 64 --steps 20 \
    --workers 14 --root "$here/.dev/looproot" --compile --loop --epochs 3 2>&1 | tee "$out/train.txt"
