#!/usr/bin/env bash
# One short run per env family a user brings (docs/environments.md), from the repository root:
#
#     bash benchmarks/bring_your_env.sh [OUT_DIR]      # default OUT_DIR: docs/results/bring-your-env
#
# For each family: `wqmix check-env`, then a short OW-QMIX training run (one seed) into
# OUT_DIR/FAMILY; each run's summary.json holds its env steps/s and final greedy return. The runs
# use the env's defaults and ε annealed over the first quarter of the run; nothing is tuned.
# ONLY=NAME runs one of them.
set -euo pipefail

out=${1:-docs/results/bring-your-env}
wqmix=${WQMIX:-wqmix}
mkdir -p "$out"

run() {  # NAME STEPS ENV_ARGS... [-- TRAIN_ARGS...]: check-env on the env, then train
    local name=$1 steps=$2
    shift 2
    local env_args=() train_args=()
    while [[ $# -gt 0 && $1 != -- ]]; do env_args+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    train_args=("$@")
    if [[ -n ${ONLY:-} && $name != "$ONLY" ]]; then return; fi
    echo "== $name: wqmix check-env ${env_args[*]}" >&2
    $wqmix check-env "${env_args[@]}" | tee "$out/$name.check.txt"
    echo "== $name: wqmix train ${env_args[*]} ${train_args[*]} --train.total-env-steps $steps" >&2
    $wqmix train "${env_args[@]}" "${train_args[@]}" --algo ow-qmix --train.total-env-steps "$steps" \
        --exploration.epsilon-anneal-steps $((steps / 4)) --quiet --out "$out/$name"
}

run jaxmarl-switch-riddle 20000 --env jaxmarl --env.id switch_riddle
run jaxmarl-speaker-listener 50000 --env jaxmarl --env.id MPE_simple_speaker_listener_v4
run jumanji-lbf 50000 --env jumanji --env.id LevelBasedForaging-v0
run jax-signalling 20000 --env jax
run gym-lbf 50000 --env gym --env.id Foraging-8x8-2p-3f-v3 -- --train.num-envs 8
run smac-api-counting 5000 --env smac-api
