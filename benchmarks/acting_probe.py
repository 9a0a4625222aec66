"""Acting beside the env alone at other env counts than `wqmix bench`'s 8, for the compiled-env
workloads (`jumanji-lbf`, `jaxmarl-overcooked`), with the same timings `wqmix bench` makes
(`wqmix.bench.acting_and_raw`: acting alone, the env alone reading its outputs, the env alone
with its state only, the env with the agent network in a plain scan), one right after the other,
medians of `--repeats`. Set XLA_FLAGS in the environment to probe XLA's options.

    python benchmarks/acting_probe.py --workload jumanji-lbf --num-envs 8 64
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", action="append", choices=["jumanji-lbf", "jaxmarl-overcooked"])
    parser.add_argument("--num-envs", type=int, nargs="+", default=[8])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import jax
    import numpy as np

    from wqmix import config as cfg
    from wqmix.bench import WORKLOADS, acting_and_raw
    from wqmix.train import Trainer, seed_keys

    for name in args.workload or ["jumanji-lbf", "jaxmarl-overcooked"]:
        for num_envs in args.num_envs:
            config = cfg.validate(WORKLOADS[name].make_config("qmix"))
            config = dataclasses.replace(config, train=dataclasses.replace(config.train, num_envs=num_envs))
            trainer = Trainer(config)
            states = jax.jit(jax.vmap(trainer.init))(seed_keys(config.seed, 1))
            rates = acting_and_raw(trainer, states, config)
            env_steps = WORKLOADS[name].measure_env_steps * max(1, num_envs // 8)
            acting, raw, state_only, floor = np.median([rates(env_steps) for _ in range(args.repeats)], axis=0)
            print(json.dumps({"workload": name, "num_envs": num_envs, "xla_flags": os.environ.get("XLA_FLAGS", ""),
                              "acting": round(acting), "env_alone": round(raw), "env_alone_state_only": round(state_only),
                              "env_and_network": round(floor), "acting_vs_env_alone": round(acting / raw, 3)}))


if __name__ == "__main__":
    main()
