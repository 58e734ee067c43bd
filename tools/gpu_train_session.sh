#!/usr/bin/env bash
# One session on a lent GPU machine (PyTorch there, no SimpleITK, nothing to download): simulate the
# brain MR→CT and CBCT→CT training sets in memory (tools/train_simulated.py), train runs side by side
# on the GPU, each sized to end before a deadline, and pack each run folder (best.pt, metrics.jsonl,
# timing.json, command.txt, log; not checkpoint.pt) into $OUT/<run>.tgz.
#
#   bash tools/gpu_train_session.sh            # from the repository root, wheels in .whl/
#
# PHASE=all (default) does everything in one command. The carried tree is limited (64 MiB), so a
# session that also needs parent runs splits in two commands on the same warm machine:
#   PHASE=prepare   install the wheels from .whl/ and simulate both sets (kept in $WORK);
#   PHASE=train     copy the parent runs carried in $INIT_DIR (run folders with best.pt and
#                   timing.json) into $WORK/runs, then train and pack as above.
# Runs: gpu_mr_a / gpu_mr_b / gpu_cbct_a / gpu_cbct_b start fresh at lr 5e-4 with the CH_A / CH_B
# generator; gpu_mr_w / gpu_cbct_w are warm restarts at WARM_LR from $INIT_MR / $INIT_CBCT's best.pt
# (train --init-from RUN/best.pt: the served generator; the other networks start fresh).
# A further restart on the same warm machine (as for version 5): rename the finished runs, then
#   mv $WORK/runs/gpu_mr_w $WORK/runs/gpu_mr_w1 (likewise gpu_cbct_w), and
#   PHASE=train INIT_DIR=/nonexistent INIT_MR=gpu_mr_w1 INIT_CBCT=gpu_cbct_w1 WARM_LR=1.25e-4 ...
#
# The wheels the machine lacks (monai, nibabel, nilearn for its MNI152 template, pydicom) travel in
# .whl/. Environment knobs for a rehearsal on a CPU machine: BUDGET_S (seconds from start to the end
# of training), DEVICE, MR_SUBJECTS, CBCT_SUBJECTS, STEPS, BATCH, CH_A, CH_B, SIM_WORKERS, CALIB_STEPS,
# THREADS, RUNS, WARM_LR, INIT_DIR, INIT_MR, INIT_CBCT, WORK.
set -u
START=$(date +%s)
BUDGET_S=${BUDGET_S:-520}
DEVICE=${DEVICE:-cuda}
MR_SUBJECTS=${MR_SUBJECTS:-120}
CBCT_SUBJECTS=${CBCT_SUBJECTS:-80}
STEPS=${STEPS:-200}
BATCH=${BATCH:-16}
CH_A=${CH_A:-32,64,128,256}
CH_B=${CH_B:-64,128,256,512}
SIM_WORKERS=${SIM_WORKERS:-8}
CALIB_STEPS=${CALIB_STEPS:-40}
THREADS=${THREADS:-3}
# Which runs to start side by side (fewer runs: a larger share of the GPU each).
RUNS=${RUNS:-gpu_mr_a gpu_mr_b gpu_cbct_a gpu_cbct_b}
PHASE=${PHASE:-all}
WARM_LR=${WARM_LR:-2.5e-4}
INIT_DIR=${INIT_DIR:-.init}
INIT_MR=${INIT_MR:-gpu_mr_a2}
INIT_CBCT=${INIT_CBCT:-gpu_cbct_b2}
OUT=${OUT:?set OUT to the folder that receives the results}
case $PHASE in
    all | prepare | train) ;;
    *) echo "PHASE: unknown phase $PHASE (all, prepare, train)" >&2; exit 2 ;;
esac
REPO=$(pwd)
W=${WORK:-/tmp/gpu_session}
export PYTHONUNBUFFERED=1

if [ "$PHASE" != train ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
fi
if [ -d /tmp/site ]; then
    export PYTHONPATH=/tmp/site:$REPO
else
    export PYTHONPATH=$REPO
fi
mkdir -p "$W/runs" "$OUT"
{
    echo "phase $PHASE"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    python3 -c "import sys, torch, monai, numpy; print(sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-', \
'monai', monai.__version__, 'numpy', numpy.__version__)"
    python3 -c "import onnxruntime as ort; print('onnxruntime', ort.__version__, ort.get_available_providers())"
    nproc
} > "$OUT/session.txt" 2>&1

if [ "$PHASE" = train ]; then
    # The parents travel in the repository's $INIT_DIR; they are trained from as runs/<name>/best.pt,
    # the path their children's cards record.
    for name in "$INIT_MR" "$INIT_CBCT"; do
        [ -d "$INIT_DIR/$name" ] && cp -r "$INIT_DIR/$name" "$W/runs/"
    done
    cd "$W" || exit 1
    for pkl in mr.pkl cbct.pkl; do
        [ -f "$pkl" ] || { echo "no $W/$pkl: run PHASE=prepare first on this machine" >> "$OUT/session.txt"; exit 1; }
    done
else
    cd "$W" || exit 1
    # 1. Simulate both training sets at once (one process per core between them).
    OMP_NUM_THREADS=1 python3 "$REPO/tools/train_simulated.py" simulate --task mr-to-ct --site brain \
        --subjects "$MR_SUBJECTS" --seed 1 --workers "$SIM_WORKERS" --out mr.pkl > sim_mr.log 2>&1 &
    SIM1=$!
    OMP_NUM_THREADS=1 python3 "$REPO/tools/train_simulated.py" simulate --task cbct-to-ct --site brain \
        --subjects "$CBCT_SUBJECTS" --seed 1 --workers "$SIM_WORKERS" --out cbct.pkl > sim_cbct.log 2>&1 &
    SIM2=$!
    wait $SIM1 $SIM2
    cp sim_mr.log sim_cbct.log "$OUT/" 2>/dev/null
    echo "simulated at +$(($(date +%s) - START)) s" >> "$OUT/session.txt"
    if [ "$PHASE" = prepare ]; then
        ls -la "$W" >> "$OUT/session.txt"
        exit 0
    fi
fi

# 2. The runs side by side, each fitted to the deadline.
FIT=$((START + BUDGET_S))
MR="--task mr-to-ct --data mr_brain_train --crop-px 128 --seed 1 --loss-weight adversarial=0.1"
CB="--task cbct-to-ct --data cbct_brain_train --crop-px 128 --seed 1 --paired-l1 100 \
--loss-weight adversarial=0.1 --loss-weight cycle=1 --loss-weight identity=0"
COMMON="--steps-per-epoch $STEPS --batch-size $BATCH --ema-decay 0.998 --threads $THREADS --device $DEVICE --no-progress"
run() {  # name pickle options...
    local name=$1 pkl=$2
    shift 2
    python3 "$REPO/tools/train_simulated.py" train --subjects-file "$pkl" --fit-until "$FIT" \
        --calibration-steps "$CALIB_STEPS" -- "$@" --out "runs/$name" > "runs/$name.log" 2>&1
}
for name in $RUNS; do
    case $name in
        # shellcheck disable=SC2086
        gpu_mr_a) run gpu_mr_a mr.pkl $MR --lr 5e-4 --channels "$CH_A" $COMMON & ;;
        # shellcheck disable=SC2086
        gpu_mr_b) run gpu_mr_b mr.pkl $MR --lr 5e-4 --channels "$CH_B" $COMMON & ;;
        # shellcheck disable=SC2086
        gpu_cbct_a) run gpu_cbct_a cbct.pkl $CB --lr 5e-4 --channels "$CH_A" $COMMON & ;;
        # shellcheck disable=SC2086
        gpu_cbct_b) run gpu_cbct_b cbct.pkl $CB --lr 5e-4 --channels "$CH_B" $COMMON & ;;
        # shellcheck disable=SC2086
        gpu_mr_w) run gpu_mr_w mr.pkl $MR --lr "$WARM_LR" --channels "$CH_A" $COMMON \
            --init-from "runs/$INIT_MR/best.pt" & ;;
        # shellcheck disable=SC2086
        gpu_cbct_w) run gpu_cbct_w cbct.pkl $CB --lr "$WARM_LR" --channels "$CH_B" $COMMON \
            --init-from "runs/$INIT_CBCT/best.pt" & ;;
        *) echo "RUNS: unknown run $name (gpu_mr_a, gpu_mr_b, gpu_cbct_a, gpu_cbct_b, gpu_mr_w, gpu_cbct_w)" \
            >> "$OUT/session.txt" ;;
    esac
done

# 3. A hard stop 15 s after the deadline, whatever is still running, then pack.
while [ -n "$(jobs -rp)" ] && [ "$(date +%s)" -lt $((FIT + 15)) ]; do sleep 2; done
# Each job is a subshell running python: stop the python (its child), then the subshell. Not pkill -f,
# which would also match a shell whose own command line names the tool.
for pid in $(jobs -rp); do
    pkill -P "$pid" 2>/dev/null
    kill "$pid" 2>/dev/null
done
sleep 1
echo "packed at +$(($(date +%s) - START)) s" >> "$OUT/session.txt"
nvidia-smi >> "$OUT/session.txt" 2>&1
for name in $RUNS; do
    if [ ! -d "runs/$name" ]; then
        # A run refused before it made its folder (a missing parent, a bad option): its log says why.
        echo "run $name made no folder; its log follows" >> "$OUT/session.txt"
        tail -n 5 "runs/$name.log" >> "$OUT/session.txt" 2>&1
        continue
    fi
    cp "runs/$name.log" "runs/$name/train.log"
    tar -czf "$OUT/$name.tgz" --exclude=checkpoint.pt -C runs "$name"
done
ls -la "$OUT" >> "$OUT/session.txt"
