"""`wqmix reproduce`: the grids, stable trial names, merging parts of a grid, the time estimate and
the report. No training here (the sweep runner has its own tests); trials are written by hand."""

import csv
import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from wqmix import config as cfg
from wqmix.cli import parse_train_args
from wqmix.errors import ConfigError
from wqmix.experiments import reproduce as rep
from wqmix.sweep.manifest import Manifest

pytestmark = pytest.mark.integration  # reproduce grids on Ray, run through the CLI


def wqmix(*argv):
    return subprocess.run([sys.executable, "-m", "wqmix.cli", *argv], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("experiment,expected", [
    ("matrix-game", "trials: 15, of which 15 to run"),
    ("matrix-games", "25 games (5 hand-crafted, 20 random) x 5 seeds x 15 algorithms"),
    ("predator-prey", "trials: 24, of which 24 to run"),
    ("smax", "trials: 12, of which 12 to run"),
])
def test_dry_run_prints_the_grid_and_an_estimate(experiment, expected, tmp_path):
    result = wqmix("reproduce", experiment, "--dry-run", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout and "estimated wall time here" in result.stdout
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_bad_options_are_one_line_errors(tmp_path):
    for argv, field in ((["smax", "--map", "MMM"], "map = 'MMM' is invalid: has no SMAX counterpart"),
                        (["matrix-game", "--punishment", "-1"], "only predator-prey has a miscapture punishment"),
                        (["predator-prey", "--punishment", "1"], "'1' is invalid: must be a number <= 0")):
        result = wqmix("reproduce", *argv, "--dry-run", "--out", str(tmp_path))
        assert result.returncode == 2 and field in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def predator_prey_trials(algos=("ow-qmix", "cw-qmix"), seeds=2, first_seed=0, punishments=(-2.0, -1.0)):
    experiment = rep.EXPERIMENTS["predator-prey"]
    return rep.trials(experiment, rep.settings(experiment, punishments), algos, seeds, first_seed)


def test_trials_are_named_stably_with_the_official_settings():
    trials = {t.id: t for t in predator_prey_trials()}
    assert list(trials) == ["ow-qmix-p-2-seed0", "ow-qmix-p-2-seed1", "cw-qmix-p-2-seed0", "cw-qmix-p-2-seed1",
                            "ow-qmix-p-1-seed0", "ow-qmix-p-1-seed1", "cw-qmix-p-1-seed0", "cw-qmix-p-1-seed1"]
    # A trial is the run `wqmix train` makes from the paper preset (1M steps, tests every 10k).
    train, _, _ = parse_train_args(["--preset", "predator-prey-paper", "--algo", "cw-qmix", "--seed", "1", "--quiet"])
    assert trials["cw-qmix-p-2-seed1"].config == train
    assert trials["ow-qmix-p-1-seed0"].config.env.punishment == -1.0
    # A part of the grid run later has the same names and configs: they merge into one directory.
    part = {t.id: t for t in predator_prey_trials(algos=("cw-qmix",), seeds=1, first_seed=1, punishments=(-1.0,))}
    assert list(part) == ["cw-qmix-p-1-seed1"] and part["cw-qmix-p-1-seed1"].config == trials["cw-qmix-p-1-seed1"].config
    # The ablations take the official alpha 0.5; --epsilon-anneal is applied after the algorithm.
    experiment = rep.EXPERIMENTS["predator-prey"]
    ablation, = rep.trials(experiment, rep.settings(experiment, None, 1_000_000), ["cw-qmix-no-central"], 1)
    assert ablation.id == "cw-qmix-no-central-p-2-eps1000000-seed0"
    assert ablation.config.algo.alpha == 0.5 and ablation.config.exploration.epsilon_anneal_steps == 1_000_000
    # The matrix game trains a trial's seeds together.
    mg = rep.EXPERIMENTS["matrix-game"]
    ow, = rep.trials(mg, rep.settings(mg), ["ow-qmix"], 5)
    assert ow.id == "ow-qmix" and ow.config.num_seeds == 5 and ow.config.train.total_env_steps == 10_000


def finish(sweep_dir, trial, scores, curve):
    """A finished trial's files, as a run writes them: summary.json and metrics.csv."""
    run_dir = sweep_dir / "trials" / trial.id
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(trial.config)))
    per_seed = [{"seed": s, "greedy_return": v, "test_episodes": 16} for s, v in scores.items()]
    (run_dir / "summary.json").write_text(json.dumps({"algo": trial.config.algo.name, "env": "predator-prey",
                                                      "seeds": list(scores), "per_seed": per_seed}))
    with open(run_dir / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["seed", "env_steps", "train_return", "test_return"])
        writer.writeheader()
        for seed in scores:
            for step, value in curve:
                writer.writerow({"seed": seed, "env_steps": step, "train_return": value, "test_return": value})


def test_the_jaxmarl_protocol_collects_and_updates_as_jaxmarl_on_smax_only(tmp_path):
    experiment = rep.with_protocol(rep.EXPERIMENTS["smax"], "jaxmarl")
    (trial, *_) = rep.trials(experiment, rep.settings(experiment, maps=["2s3z"]), ["qmix"], 1)
    train, network = trial.config.train, trial.config.network
    # ql_rnn_smax.yaml: NUM_ENVS 16, NUM_STEPS 128, NUM_EPOCHS 8, BUFFER_BATCH_SIZE 32, BUFFER_SIZE 5000.
    assert (train.collector, train.num_envs, train.stream_window, train.updates_per_iteration) == ("stream", 16, 128, 8)
    assert (train.batch_size, train.buffer_size, train.total_env_steps) == (32, 5000, 2_000_000)
    # The rest stays as under the paper's protocol: pymarl's network sizes and the official learning settings.
    (paper, *_) = rep.trials(rep.EXPERIMENTS["smax"], rep.settings(rep.EXPERIMENTS["smax"], maps=["2s3z"]), ["qmix"], 1)
    assert network == paper.config.network and trial.config.algo == paper.config.algo
    assert trial.config.exploration == paper.config.exploration and trial.config.env == paper.config.env
    assert rep.with_protocol(rep.EXPERIMENTS["smax"], "paper") is rep.EXPERIMENTS["smax"]
    assert experiment.algos == ("ow-qmix", "cw-qmix", "qmix", "qplex")
    with pytest.raises(ConfigError, match="only smax has a jaxmarl protocol"):
        rep.with_protocol(rep.EXPERIMENTS["predator-prey"], "jaxmarl")
    result = wqmix("reproduce", "smax", "--protocol", "jaxmarl", "--dry-run", "--out", str(tmp_path / "dry"))
    assert result.returncode == 0 and "protocol: jaxmarl" in result.stdout, result.stderr
    rep.report(experiment, tmp_path, rep.settings(experiment, maps=["2s3z"]), ["qmix"], 1, [trial], "wqmix reproduce")
    first = (tmp_path / "report.md").read_text().splitlines()[2]
    assert "under the jaxmarl protocol" in first and "not comparable to SMAC's" in first


def test_parts_of_a_grid_merge_into_one_manifest(tmp_path):
    spec = rep.sweep_spec(rep.EXPERIMENTS["predator-prey"], [], cfg.Config())
    first = predator_prey_trials(algos=("ow-qmix",), seeds=1, punishments=(-2.0,))
    manifest = Manifest.open(tmp_path, spec, first, "first part", merge=True)
    manifest.save()
    finish(tmp_path, first[0], {0: 35.0}, [(10_000, 1.0)])
    manifest.update(first[0].id, status="done", run_s=100.0)
    # The rest of the grid, later: the finished trial stays done, the others are added.
    rest = predator_prey_trials(algos=("ow-qmix", "cw-qmix"), seeds=1, punishments=(-2.0,))
    merged = Manifest.open(tmp_path, spec, rest[1:], "second part", merge=True)
    assert list(merged.trials) == ["ow-qmix-p-2-seed0", "cw-qmix-p-2-seed0"]
    assert merged.trials["ow-qmix-p-2-seed0"]["status"] == "done" and merged.trials["ow-qmix-p-2-seed0"]["run_s"] == 100
    assert merged.trials["cw-qmix-p-2-seed0"]["status"] == "pending"
    # Asking again for a finished trial keeps it done; the same name with another config is refused.
    again = Manifest.open(tmp_path, spec, rest, "again", merge=True)
    assert again.trials["ow-qmix-p-2-seed0"]["status"] == "done"
    other = [rep.Trial(first[0].id, first[0].params, cfg.apply_override(first[0].config, "algo.gamma", "0.9"))]
    with pytest.raises(ConfigError, match="ow-qmix-p-2-seed0 differs at algo.gamma"):
        Manifest.open(tmp_path, spec, other, "conflict", merge=True)
    # Without merge (a plain sweep) another set of trials is a different sweep.
    with pytest.raises(ConfigError, match="holds a different sweep"):
        Manifest.open(tmp_path, spec, rest, "plain")


def test_a_finished_trial_copied_in_is_adopted_not_trained_again(tmp_path):
    spec = rep.sweep_spec(rep.EXPERIMENTS["predator-prey"], [], cfg.Config())
    grid = predator_prey_trials(algos=("ow-qmix",), seeds=2, punishments=(-2.0,))
    # Seed 0 ran in another checkout and was copied in without that checkout's manifest.
    finish(tmp_path, grid[0], {0: 38.0}, [(10_000, 38.0)])
    summary = tmp_path / "trials" / grid[0].id / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "total_run_s": 321.0,
                                   "total_env_steps": grid[0].config.train.total_env_steps}))
    # Seed 1 was copied in stopped short of its steps: it stays to run (the runner resumes it).
    finish(tmp_path, grid[1], {1: 10.0}, [(10_000, 10.0)])
    short = tmp_path / "trials" / grid[1].id / "summary.json"
    short.write_text(json.dumps({**json.loads(short.read_text()), "total_env_steps": 500_000}))
    lines = []
    assert rep.reproduce(rep.Request("predator-prey", out=str(tmp_path), algos=["ow-qmix"], seeds=2,
                                     punishments=[-2.0], dry_run=True), log=lines.append) == 0
    assert "trials: 2, of which 1 to run" in lines[0]
    manifest = Manifest.open(tmp_path, spec, grid, "the grid", merge=True)
    assert manifest.trials[grid[0].id]["status"] == "done" and manifest.trials[grid[0].id]["run_s"] == 321.0
    assert manifest.trials[grid[1].id]["status"] == "pending"
    # A copied-in run of another config is refused, not overwritten.
    other = [rep.Trial(grid[0].id, grid[0].params, cfg.apply_override(grid[0].config, "algo.gamma", "0.9"))]
    with pytest.raises(ConfigError, match="finished run at trials/ow-qmix-p-2-seed0 with another config "
                                          r"\(differs at algo.gamma\)"):
        Manifest.open(tmp_path, spec, other, "conflict", merge=True)


def test_the_report_gives_each_trial_s_wall_time(tmp_path):
    ours, beside = tmp_path / "ours", tmp_path / "jaxmarl-qmix" / "3m"
    for path, summary in ((ours, {"seeds": [0, 1], "total_env_steps": 1_000, "total_run_s": 100.0, "compile_s": 9.0}),
                          (beside, {"seeds": 3, "env_steps_per_seed": 600, "run_s": [100.0, 110.0, 90.0],
                                    "compile_s": 5.0})):
        path.mkdir(parents=True)
        (path / "summary.json").write_text(json.dumps(summary))
    lines, data = rep.trial_times({"ours": ours, "jaxmarl-qmix-3m": beside})
    # Ours: 2 seeds x 1,000 steps in 100 s together; JaxMARL's: 3 seeds x 600 steps, one after another, in 300 s.
    assert lines[2] == "| ours | 2 | 1,000 | 100 s | 20 | 9 s |"
    assert lines[3] == "| jaxmarl-qmix-3m | 3 | 600 | 100 s, 110 s, 90 s (one seed after another) | 6 | 5 s |"
    assert data["ours"]["run_s"] == 100.0 and data["jaxmarl-qmix-3m"]["run_s"] == [100.0, 110.0, 90.0]


def _finished(out, name, algo, seconds, config=None, steps=None):
    """A run directory in `out/trials/` whose summary says it trained `steps` env steps (default:
    all its config's) in `seconds`."""
    run_dir = out / "trials" / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config or {"algo": {"name": algo}}))
    steps = (config or {}).get("train", {}).get("total_env_steps", 1) if steps is None else steps
    (run_dir / "summary.json").write_text(json.dumps({"total_env_steps": steps, "run_s": 50.0, "total_run_s": seconds}))


def test_the_estimate_uses_the_trials_measured_here_when_there_are_some(tmp_path):
    experiment = rep.EXPERIMENTS["predator-prey"]
    todo = predator_prey_trials(algos=("ow-qmix", "vdn"), seeds=1, punishments=(-2.0,))
    ref = experiment.reference_trial_s
    # Nothing measured: the references (OW: central, VDN: other), scaled by the calibration. They are
    # one trial on 2 cores: two at once on 2 cores take twice as long each (OW sets the wall
    # time), on 4 cores as long; one alone on 2 cores, as long.
    calibration = 2 * rep.REFERENCE_CALIBRATION_S
    assert rep.estimate_s(experiment, todo, {}, 2, calibration) == pytest.approx(2 * 2 * ref["central"])
    assert rep.estimate_s(experiment, todo, {}, 4, calibration) == pytest.approx(2 * ref["central"])
    assert rep.estimate_s(experiment, todo[1:], {}, 2, calibration) == pytest.approx(2 * ref["other"])
    assert rep.estimate_s(experiment, todo, {}, 2, calibration, max_concurrent=1) == pytest.approx(
        2 * (ref["central"] + ref["other"]))
    # OW-QMIX measured here (two trials, mean 300 s, each its total over resumes; not the
    # ablation's, whose name starts alike); unfinished VDN runs (no summary; one stopped short of
    # its steps) do not count.
    _finished(tmp_path, "ow-qmix-p-1-seed0", "ow-qmix", 200.0)
    _finished(tmp_path, "ow-qmix-p-1-seed1", "ow-qmix", 400.0)
    _finished(tmp_path, "ow-qmix-no-central-p-1-seed0", "ow-qmix-no-central", 9000.0)
    (tmp_path / "trials" / "vdn-p-1-seed0").mkdir()
    _finished(tmp_path, "vdn-p-1-seed1", "vdn", 10.0, {"algo": {"name": "vdn"}, "train": {"total_env_steps": 2}},
              steps=1)
    done = rep.measured_s(tmp_path)
    assert done == {("ow-qmix", "p-1"): [200.0, 400.0], ("ow-qmix-no-central", "p-1"): [9000.0]}
    # VDN, not measured: its reference scaled as the measured trials compare with theirs (the
    # geometric mean of OW-QMIX's 300 s against the central reference and the ablation's 9,000 s
    # against the other), not by the calibration. One after the other: OW's 300 s, then VDN; side
    # by side on 4 cores: VDN's alone.
    vdn = ref["other"] * math.sqrt(300.0 / ref["central"] * 9000.0 / ref["other"])
    assert rep.estimate_s(experiment, todo, done, 2, calibration, max_concurrent=1) == pytest.approx(300.0 + vdn)
    assert rep.estimate_s(experiment, todo, done, 4, 100 * calibration) == pytest.approx(vdn)


def test_the_estimate_runs_measured_trials_side_by_side_up_to_the_trials_in_flight():
    experiment = rep.with_protocol(rep.EXPERIMENTS["smax"], "jaxmarl")
    todo = rep.trials(experiment, rep.settings(experiment, maps=["3m"]), ["qmix"], 3)
    done = {("qmix", "3m"): [600.0]}
    # 3 trials of 600 s: 2 cores run two at once (1,200 s); one at a time, 1,800 s; 4 cores, 600 s.
    assert rep.estimate_s(experiment, todo, done, 2, 1.0) == pytest.approx(1200.0)
    assert rep.estimate_s(experiment, todo, done, 2, 1.0, max_concurrent=1) == pytest.approx(1800.0)
    assert rep.estimate_s(experiment, todo, done, 4, 1.0) == pytest.approx(600.0)
    # One trial takes its own time however many cores there are.
    assert rep.estimate_s(experiment, todo[:1], done, 2, 1.0) == pytest.approx(600.0)


def test_the_estimate_prefers_the_same_setting_and_counts_every_finished_trial(tmp_path):
    experiment = rep.with_protocol(rep.EXPERIMENTS["smax"], "jaxmarl")
    chosen = rep.settings(experiment, maps=["3m", "2s3z"])
    grid = rep.trials(experiment, chosen, ["qmix"], 1)
    three_m, two_s = grid
    assert three_m.params["setting"] == "3m" and two_s.params["setting"] == "2s3z"
    # A finished 3m trial copied in (no manifest lists it): adopted, and its summary's total
    # training time counts; a 2s3z trial of a seed outside this grid counts too.
    _finished(tmp_path, three_m.id, "qmix", 700.0, json.loads(json.dumps(cfg.to_dict(three_m.config))))
    _finished(tmp_path, "qmix-2s3z-seed9", "qmix", 2000.0)
    assert rep._copied_in(tmp_path, three_m) and not rep._copied_in(tmp_path, two_s)
    done = rep.measured_s(tmp_path)
    assert done == {("qmix", "3m"): [700.0], ("qmix", "2s3z"): [2000.0]}
    # Each setting's own time, not the mean over settings (1,350 s), nor the reference.
    assert rep.estimate_s(experiment, [two_s], done, 2, 1.0) == pytest.approx(2000.0)
    assert rep.estimate_s(experiment, [three_m, two_s], done, 2, 1.0, max_concurrent=1) == pytest.approx(2700.0)
    # A setting not measured here: the algorithm's trials in the others (their geometric mean).
    three_s = rep.trials(experiment, rep.settings(experiment, maps=["3s5z"]), ["qmix"], 1)
    assert rep.estimate_s(experiment, three_s, done, 2, 1.0) == pytest.approx(math.sqrt(700.0 * 2000.0))
    # An algorithm not measured here: its reference, scaled as QMIX's trials of the same setting
    # compare with QMIX's reference (2s3z: 2,000 s), else as all of them do.
    qplex = {m: rep.trials(experiment, rep.settings(experiment, maps=[m]), ["qplex"], 1) for m in ("2s3z", "3s5z")}
    assert rep.estimate_s(experiment, qplex["2s3z"], done, 2, 1.0) == pytest.approx(2000.0)
    assert rep.estimate_s(experiment, qplex["3s5z"], done, 2, 99.0) == pytest.approx(math.sqrt(700.0 * 2000.0))


def test_the_estimate_scales_a_setting_measured_with_other_algorithms_by_the_algorithms_ratio():
    experiment = rep.with_protocol(rep.EXPERIMENTS["smax"], "jaxmarl")
    ow_3s5z = rep.trials(experiment, rep.settings(experiment, maps=["3s5z"]), ["ow-qmix"], 1)
    # QMIX: 700 s on 3m, 2,100 s on 3s5z (3x); OW-QMIX: 1,050 s on 3m (1.5x QMIX, where the
    # references say 2x). OW-QMIX on 3s5z: 3 x 1,050 = 1.5 x 2,100 = 3,150 s.
    done = {("qmix", "3m"): [700.0], ("qmix", "3s5z"): [2100.0], ("ow-qmix", "3m"): [900.0, 1200.0]}
    assert experiment.reference_trial_s["central"] == 2 * experiment.reference_trial_s["other"]
    assert rep.estimate_s(experiment, ow_3s5z, done, 2, 99.0) == pytest.approx(3150.0)
    # CW-QMIX, measured nowhere: the mean term of the algorithms measured (geometric mean of OW's
    # and QMIX's 3s5z times, each against its own reference).
    cw_3s5z = rep.trials(experiment, rep.settings(experiment, maps=["3s5z"]), ["cw-qmix"], 1)
    ref = experiment.reference_trial_s
    assert rep.estimate_s(experiment, cw_3s5z, done, 2, 99.0) == pytest.approx(
        ref["central"] * math.sqrt(3150.0 / ref["central"] * 2100.0 / ref["other"]))


def test_fewer_env_steps_keep_the_names_scale_the_estimate_and_are_said_first(tmp_path):
    experiment = rep.EXPERIMENTS["smax"]
    chosen = rep.settings(experiment, maps=["3m"])
    full = rep.trials(experiment, chosen, ["ow-qmix"], 1)
    short = rep.trials(experiment, chosen, ["ow-qmix"], 1, env_steps=300_000)
    assert [t.id for t in short] == [t.id for t in full] == ["ow-qmix-3m-seed0"]
    assert full[0].config.train.total_env_steps == 2_000_000 and short[0].config.train.total_env_steps == 300_000
    assert cfg.to_dict(dataclasses.replace(short[0].config, train=full[0].config.train)) == cfg.to_dict(full[0].config)
    calibration = rep.REFERENCE_CALIBRATION_S
    assert rep.estimate_s(experiment, short, {}, 2, calibration) == pytest.approx(
        experiment.reference_trial_s["central"] * 0.15)
    # The two lengths never share a directory; the report's first line says the steps are fewer.
    spec = rep.sweep_spec(experiment, [], short[0].config)
    Manifest.open(tmp_path, spec, short, "short", merge=True).save()
    with pytest.raises(ConfigError, match="ow-qmix-3m-seed0 differs at train.total_env_steps"):
        Manifest.open(tmp_path, spec, full, "full", merge=True)
    rep.report(experiment, tmp_path, chosen, ["ow-qmix"], 1, short, "wqmix reproduce smax --env-steps 300000")
    first = (tmp_path / "report.md").read_text().splitlines()[2]
    assert "300,000 env steps per seed (the paper's protocol: 2,000,000, so FEWER steps here)" in first
    # The last line names the manifest only where there is one (trials copied in have none).
    assert (tmp_path / "report.md").read_text().splitlines()[-1].endswith("the manifest is `sweep.json`.")
    (tmp_path / "sweep.json").unlink()
    rep.report(experiment, tmp_path, chosen, ["ow-qmix"], 1, short, "wqmix reproduce smax --env-steps 300000")
    assert (tmp_path / "report.md").read_text().splitlines()[-1].endswith("no manifest here).")
    result = wqmix("reproduce", "smax", "--env-steps", "300000", "--dry-run", "--out", str(tmp_path / "dry"))
    assert result.returncode == 0 and "env steps per seed: 300,000" in result.stdout, result.stderr


def test_report_pools_the_finished_trials_and_names_the_missing(tmp_path):
    experiment = rep.EXPERIMENTS["predator-prey"]
    chosen = rep.settings(experiment, [-2.0])
    trials = rep.trials(experiment, chosen, ["ow-qmix", "qmix"], 2)
    scores = {"ow-qmix-p-2-seed0": 38.0, "ow-qmix-p-2-seed1": 34.0, "qmix-p-2-seed0": -3.0}
    for trial in trials:
        if trial.id in scores:
            finish(tmp_path, trial, {trial.config.seed: scores[trial.id]}, [(10_000, -20.0), (20_000, scores[trial.id])])
    data = rep.report(experiment, tmp_path, chosen, ["ow-qmix", "qmix"], 2, trials, "wqmix reproduce predator-prey")
    text = (tmp_path / "report.md").read_text()
    lines = text.splitlines()
    assert lines[2].startswith("**3 of 4 trials finished** under the paper protocol: 2 seed(s) per algorithm and setting, "
                               "1,000,000 env steps")
    assert "Missing: qmix-p-2-seed1." in lines[2]
    rows = {r["algo"]: r for r in data["settings"]["p-2"]["rows"]}
    assert rows["ow-qmix"]["mean"] == 36.0 and rows["ow-qmix"]["n_seeds"] == 2 and rows["qmix"]["mean"] == -3.0
    assert "| ow-qmix | 36.00 | paper | ≈ 40 (Fig. 2, read off the plot) |" in text
    assert "| qmix | -3.00 | public run of the official code | ≈ 34 |" in text
    assert (tmp_path / "curves.png").stat().st_size > 0 and (tmp_path / "curves.pdf").is_file()
    assert json.loads((tmp_path / "report.json").read_text())["missing"] == ["qmix-p-2-seed1"]
    assert "outside this command's grid" not in text
    # Beside the headline, the mean of each seed's last k logged tests (here both of them).
    assert data["headline"] == "final evaluation" and "The headline score is the final evaluation" in text
    last = {r["algo"]: r for r in data["settings"]["p-2"]["last_tests_rows"]}
    assert last["ow-qmix"]["mean"] == ((-20 + 38) / 2 + (-20 + 34) / 2) / 2 and last["qmix"]["mean"] == -11.5
    assert last["qmix"]["metric"] == "last-5 test_return" and "Mean of the last 5 logged tests" in text
    data = rep.report(experiment, tmp_path, chosen, ["ow-qmix", "qmix"], 2, trials, "wqmix reproduce", last_k=1)
    assert {r["algo"]: r["mean"] for r in data["settings"]["p-2"]["last_tests_rows"]} == {"ow-qmix": 36.0, "qmix": -3.0}
    # These trials were written by hand, with no record of their code: each is flagged.
    assert data["provenance"]["flagged"] == sorted(scores)
    assert all(t["flags"] == ["no eval record"] for t in data["provenance"]["trials"].values())


def test_the_report_names_the_machines_the_trials_ran_on_not_the_one_writing_it(tmp_path, monkeypatch):
    import os

    experiment = rep.EXPERIMENTS["predator-prey"]
    chosen = rep.settings(experiment, [-2.0])
    trials = rep.trials(experiment, chosen, ["qmix"], 3)
    new = {"platform": "Linux-A", "jax_backend": "gpu", "machine": {"cpu": "EPYC", "cpu_count": 16}}
    for trial, meta in zip(trials, (new, new, {"platform": "Linux-B", "jax_backend": "cpu"})):
        finish(tmp_path, trial, {trial.config.seed: 1.0}, [(10_000, 1.0)])
        (tmp_path / "trials" / trial.id / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setattr(os, "cpu_count", lambda: 7)  # the machine writing the report is neither
    data = rep.report(experiment, tmp_path, chosen, ["qmix"], 3, trials, "wqmix reproduce predator-prey")
    line = next(x for x in (tmp_path / "report.md").read_text().splitlines() if x.startswith("Hardware"))
    assert line == ("Hardware, from the trials' meta.json: Linux-A, EPYC, 16 cores, JAX backend gpu (2 trials); "
                    "Linux-B, CPU not recorded, cores not recorded, JAX backend cpu (1 trial).")
    assert [h["trials"] for h in data["hardware"]] == [2, 1]


def test_a_report_of_part_of_a_grid_names_the_directory_s_other_finished_trials(tmp_path):
    experiment = rep.EXPERIMENTS["predator-prey"]
    chosen = rep.settings(experiment, [-2.0])
    spec = rep.sweep_spec(experiment, [], cfg.Config())
    first_part, second_part = (rep.trials(experiment, chosen, ["ow-qmix"], 1, first_seed=s) for s in (0, 1))
    for part in (first_part, second_part):
        Manifest.open(tmp_path, spec, part, "part", merge=True).save()
        finish(tmp_path, part[0], {part[0].config.seed: 38.0}, [(10_000, 38.0)])
    data = rep.report(experiment, tmp_path, chosen, ["ow-qmix"], 1, second_part, "wqmix reproduce predator-prey")
    first = (tmp_path / "report.md").read_text().splitlines()[2]
    assert first.startswith("**1 of 1 trials finished**")
    assert "also holds 1 finished trial(s) outside this command's grid (ow-qmix-p-2-seed0)" in first
    assert data["outside_grid"] == ["ow-qmix-p-2-seed0"]
    # The whole grid's report has nothing outside it.
    both = rep.trials(experiment, chosen, ["ow-qmix"], 2)
    data = rep.report(experiment, tmp_path, chosen, ["ow-qmix"], 2, both, "wqmix reproduce predator-prey")
    assert data["outside_grid"] == [] and data["finished"] == ["ow-qmix-p-2-seed0", "ow-qmix-p-2-seed1"]


def test_matrix_games_resume_keeps_only_algorithms_run_with_their_current_config(tmp_path):
    from wqmix.experiments import matrix_games as mg

    games = np.concatenate([np.asarray(list(mg.HAND_CRAFTED.values()), np.float32), mg.random_games(20, 0)])
    def entry(algo, **change):
        config = cfg.to_dict(mg.suite_config(algo))
        config["algo"].update(change)
        return {"optimal_fraction": 0.5, "config": json.loads(json.dumps(config))}
    results = {"games": {str(i): g.tolist() for i, g in enumerate(games)}, "seeds": [0, 1, 2, 3, 4],
               "total_env_steps": mg.SUITE_EPISODES,
               "algorithms": {"qmix": entry("qmix"), "ow-qmix-no-central": entry("ow-qmix-no-central", alpha=0.1),
                              "vdn": {"optimal_fraction": 0.1}}}  # run before configs were recorded
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert mg.done_algorithms(tmp_path) == {"qmix": results["algorithms"]["qmix"]}  # the ablation: alpha 0.5 now
    assert mg.done_algorithms(tmp_path, num_seeds=3) == {}  # other seeds: nothing is kept


def test_jaxmarls_own_qmix_sits_beside_ours_in_each_maps_tables_and_curves(tmp_path):
    """A run of `benchmarks/jaxmarl_qmix_smax.py` under OUT/jaxmarl-qmix/MAP joins that map's
    tables: its final tests, and its last tests from the rows where a test ran (the rows between
    leave the test columns empty)."""
    experiment = rep.with_protocol(rep.EXPERIMENTS["smax"], "jaxmarl")
    chosen = rep.settings(experiment, maps=["3m", "2s3z"])
    trials = rep.trials(experiment, chosen, ["qmix"], 1)
    for trial in trials:
        if trial.id == "qmix-3m-seed0":
            run_dir = tmp_path / "trials" / trial.id
            run_dir.mkdir(parents=True)
            (run_dir / "summary.json").write_text(json.dumps(
                {"algo": "qmix", "env": "smax", "per_seed": [{"seed": 0, "test_win_rate": 0.75}]}))
            (run_dir / "metrics.csv").write_text("seed,env_steps,test_win_rate\n0,10000,0.25\n0,20000,0.75\n")
    anchor = tmp_path / "jaxmarl-qmix" / "3m"
    anchor.mkdir(parents=True)
    (anchor / "summary.json").write_text(json.dumps(
        {"algo": "jaxmarl-qmix", "env": "smax", "map": "3m",
         "per_seed": [{"seed": 0, "test_win_rate": 0.5}, {"seed": 1, "test_win_rate": 1.0}]}))
    # Updates every 2,048 env steps, a test after the 1st and the 3rd; the 2nd and 4th test nothing.
    (anchor / "metrics.csv").write_text(
        "seed,env_steps,update,loss,test_win_rate,test_return\n"
        "0,2048,1,0.5,0.0,1.0\n0,4096,2,0.4,,\n0,6144,3,0.3,0.5,2.0\n0,8192,4,0.2,,\n"
        "1,2048,1,0.5,0.5,1.0\n1,4096,2,0.4,,\n1,6144,3,0.3,1.0,2.0\n1,8192,4,0.2,,\n")
    data = rep.report(experiment, tmp_path, chosen, ["qmix"], 1, trials, "wqmix reproduce smax --protocol jaxmarl")
    rows = {r["algo"]: r for r in data["settings"]["3m"]["rows"]}
    assert rows["qmix"]["mean"] == 0.75 and rows["jaxmarl-qmix"]["mean"] == 0.75
    assert rows["jaxmarl-qmix"]["n_seeds"] == 2
    last = {r["algo"]: r["mean"] for r in data["settings"]["3m"]["last_tests_rows"]}
    assert last == {"qmix": 0.5, "jaxmarl-qmix": ((0.0 + 0.5) / 2 + (0.5 + 1.0) / 2) / 2}
    assert data["settings"]["3m"]["per_trial"]["jaxmarl-qmix-3m"] == {0: 0.5, 1: 1.0}
    assert data["settings"]["2s3z"]["rows"] == []  # neither ran there
    assert "| jaxmarl-qmix |" in (tmp_path / "report.md").read_text()
    # Not a trial of ours: the first line counts ours alone.
    assert (tmp_path / "report.md").read_text().splitlines()[2].startswith("**1 of 2 trials finished**")
