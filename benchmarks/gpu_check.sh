#!/usr/bin/env bash
# The GPU check, run as is on a machine with an NVIDIA GPU, from the repository root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]          # default OUT_DIR: gpu-check
#
# 1. installs wqmix with its `cuda` extra (JAX's CUDA 12 wheels) and the test extras into a fresh
#    venv (set WQMIX_PYTHON=/path/to/python to use an interpreter that has them already instead);
# 2. checks that JAX sees the GPU (exits 1 with the device list if it does not);
# 3. runs the tests that compile and run on the device (networks, learner, packing, replay,
#    training, exact resume);
# 4. runs `wqmix bench` on the workloads of docs/performance.md;
# and writes OUT_DIR/gpu_check.json: the device, the tests' counts and the bench figures (plus
# the raw logs beside it). Nothing here changes the GPU's settings.
set -uo pipefail

out=${1:-gpu-check}
mkdir -p "$out"
out=$(cd "$out" && pwd)
log() { echo "gpu_check: $*" >&2; }

if [[ -n "${WQMIX_PYTHON:-}" ]]; then
    python=$WQMIX_PYTHON
else
    venv=$(mktemp -d)/venv
    log "installing .[cuda,test] into $venv"
    python3 -m venv "$venv" || exit 1
    if ! "$venv/bin/pip" install -q ".[cuda,test]" >"$out/install.log" 2>&1; then
        log "pip install failed: see $out/install.log"; tail -5 "$out/install.log" >&2; exit 1
    fi
    python=$venv/bin/python
fi

if ! "$python" - >"$out/device.json" <<'EOF'
import json, sys
import jax
from wqmix.run_dir import device_description
print(json.dumps({"backend": jax.default_backend(), "device": device_description(),
                  "devices": [str(d) for d in jax.devices()], "jax": jax.__version__}))
sys.exit(0 if jax.default_backend() == "gpu" else 1)
EOF
then
    log "JAX does not see a GPU: $(cat "$out/device.json")"; exit 1
fi
log "device: $(cat "$out/device.json")"

log "tests on the device"
"$python" -m pytest -q -p no:cacheprovider tests/test_networks.py tests/test_learner.py tests/test_packing.py \
    tests/test_buffer.py tests/test_train.py tests/test_resume.py >"$out/tests.log" 2>&1
tests_rc=$?
tail -3 "$out/tests.log" >&2

log "bench"
"$python" -m wqmix.cli bench --workload matrix-game --workload predator-prey-paper --workload predator-prey-fast \
    --workload seeds-16 --workload mpe-spread-jaxmarl --workload smax-3m-jaxmarl --algo ow-qmix --algo qmix \
    --repeats 3 --json "$out/bench.json" >"$out/bench.log" 2>&1
bench_rc=$?

"$python" - "$out" "$tests_rc" "$bench_rc" <<'EOF'
import json, re, sys
from pathlib import Path
out, tests_rc, bench_rc = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
summary = (out / "tests.log").read_text().strip().splitlines()[-1:] or [""]
counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error|errors|skipped)", summary[0])}
bench = json.loads((out / "bench.json").read_text()) if (out / "bench.json").is_file() else None
result = {"device": json.loads((out / "device.json").read_text()),
          "tests": {"exit_status": tests_rc, "summary": summary[0], **counts},
          "bench": {"exit_status": bench_rc, **(bench or {})}}
(out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
print(json.dumps({"device": result["device"]["device"], "tests": result["tests"]["summary"],
                  "bench_workloads": len((bench or {}).get("results", []))}))
EOF
exit $(( tests_rc != 0 || bench_rc != 0 ))
