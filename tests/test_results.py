"""Results across seeds (wqmix.experiments.results): IQM, stratified bootstrap, run directories,
tables, learning curves and the `wqmix table` / `wqmix plot` commands."""

import csv
import json

import numpy as np
import pytest

from wqmix.cli import main
from wqmix.experiments.results import (
    RunDirError,
    aggregate,
    format_markdown,
    iqm,
    load_runs,
    plot_curves,
    results_table,
    stratified_bootstrap_ci,
    write_csv,
)

# ---------------------------------------------------------------------------------------------
# IQM and aggregates
# ---------------------------------------------------------------------------------------------


def test_iqm_of_one_to_eight_is_the_mean_of_three_to_six():
    x = np.arange(1, 9)[::-1]  # order does not matter
    assert iqm(x) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm(x, fractional=True) == pytest.approx(4.5)  # n a multiple of 4: the same


def test_iqm_with_ten_values_where_the_quartiles_fall_between_points():
    x = [13, 0, 100, 2, 21, 1, 8, 0, 5, 3]  # sorted: 0 0 1 2 3 5 8 13 21 100
    # rliable / scipy.stats.trim_mean(x, 0.25): drop int(2.5) = 2 values at each end.
    assert iqm(x) == pytest.approx((1 + 2 + 3 + 5 + 8 + 13) / 6)
    # Exactly the middle half (ranks 2.5 .. 7.5): boundary values 1 and 13 count half.
    assert iqm(x, fractional=True) == pytest.approx((0.5 * 1 + 2 + 3 + 5 + 8 + 0.5 * 13) / 5)


def test_iqm_with_five_values():
    x = [100, 3, 1, 10, 2]  # sorted: 1 2 3 10 100
    assert iqm(x) == pytest.approx((2 + 3 + 10) / 3)
    # Ranks 1.25 .. 3.75: weights 0.75, 1, 0.75 on 2, 3, 10.
    assert iqm(x, fractional=True) == pytest.approx((0.75 * 2 + 3 + 0.75 * 10) / 2.5)


def test_iqm_matches_scipy_trim_mean():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for n in range(1, 23):
        x = rng.normal(size=n) ** 3
        assert iqm(x) == pytest.approx(stats.trim_mean(x, 0.25), rel=1e-12, abs=1e-12)


def test_iqm_rejects_empty_and_non_finite():
    with pytest.raises(ValueError, match="at least one"):
        iqm([])
    with pytest.raises(ValueError, match="finite"):
        iqm([1.0, np.nan])


def test_aggregate():
    assert aggregate([0.0, 1.0, 2.0, 3.0, 100.0]) == pytest.approx({"mean": 21.2, "median": 2.0, "iqm": 2.0})


# ---------------------------------------------------------------------------------------------
# Stratified bootstrap
# ---------------------------------------------------------------------------------------------


def test_bootstrap_ci_of_two_values_by_hand():
    # Resamples of [0, 1] have mean 0, 0.5 or 1 with probability 1/4, 1/2, 1/4: the 2.5% and
    # 97.5% percentiles are 0 and 1.
    assert stratified_bootstrap_ci({"t": [0.0, 1.0]}, np.mean) == (0.0, 1.0)


@pytest.mark.parametrize("statistic", [np.mean, np.median, iqm])
def test_bootstrap_ci_contains_the_statistic(statistic):
    x = np.random.default_rng(0).normal(size=10)
    lo, hi = stratified_bootstrap_ci({"t": x}, statistic)
    assert x.min() <= lo < statistic(x) < hi <= x.max()


def test_bootstrap_ci_narrows_with_more_seeds():
    # The same empirical distribution with 4 and 16 times the seeds: the interval of the mean
    # narrows like 1/sqrt(n), i.e. halves each time.
    x = np.array([0.1, 0.4, 0.5, 0.9, 1.0])
    widths = []
    for k in (1, 4, 16):
        lo, hi = stratified_bootstrap_ci({"t": np.tile(x, k)}, np.mean)
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2] > 0
    assert 1.6 < widths[0] / widths[1] < 2.5 and 1.6 < widths[1] / widths[2] < 2.5


def test_bootstrap_ci_is_reproducible_with_a_seed():
    x = {"a": np.random.default_rng(0).normal(size=7)}
    assert stratified_bootstrap_ci(x, iqm, reps=300, seed=3) == stratified_bootstrap_ci(x, iqm, reps=300, seed=3)
    assert stratified_bootstrap_ci(x, iqm, reps=300, seed=3) != stratified_bootstrap_ci(x, iqm, reps=300, seed=4)


def test_bootstrap_ci_of_a_constant_is_a_point():
    for statistic in (np.mean, np.median, iqm):
        assert stratified_bootstrap_ci({"a": [0.75] * 6, "b": [0.75] * 3}, statistic) == (0.75, 0.75)


def test_resamples_never_mix_tasks():
    a = np.array([0.0, 1.0, 2.0])  # task a: values < 50
    b = np.array([100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0])  # task b: values >= 50
    seen = []

    def record(pooled):
        seen.append(pooled.copy())
        return float(np.mean(pooled))

    stratified_bootstrap_ci({"a": a, "b": b}, record, reps=500)
    pooled = np.stack(seen)
    assert pooled.shape == (500, 10)
    # Every resample holds exactly 3 runs of task a (first, in the mapping's order) and 7 of b.
    assert np.all(np.isin(pooled[:, :3], a)) and np.all(np.isin(pooled[:, 3:], b))
    # ... drawn with replacement: some resamples repeat a run, and every run is drawn somewhere.
    assert any(len(set(row[3:])) < 7 for row in pooled)
    assert set(pooled[:, :3].ravel()) == set(a) and set(pooled[:, 3:].ravel()) == set(b)


def test_bootstrap_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least one task"):
        stratified_bootstrap_ci({}, np.mean)
    with pytest.raises(ValueError, match="confidence"):
        stratified_bootstrap_ci({"a": [1.0]}, np.mean, confidence=1.0)
    with pytest.raises(ValueError, match="task 'b'"):
        stratified_bootstrap_ci({"a": [1.0], "b": []}, np.mean)


# ---------------------------------------------------------------------------------------------
# Run directories (fakes, in the format `wqmix train` writes)
# ---------------------------------------------------------------------------------------------

OW_WINS = {0: 0.9, 1: 0.5, 2: 1.0, 3: 0.7, 4: 0.6}  # sorted 0.5 0.6 0.7 0.9 1.0
QMIX_WINS = {0: 0.5, 1: 0.1, 2: 0.4, 3: 0.0, 4: 0.2}  # sorted 0.0 0.1 0.2 0.4 0.5
VDN_RETURNS = {0: 8.0, 1: -12.0}


def write_run(path, algo, env, per_seed, rows, summary_algo=True):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"algo": {"name": algo}, "env": {"name": env}, "seed": 0}))
    summary = {"algo": algo, "env": env, "seeds": [e["seed"] for e in per_seed], "per_seed": per_seed}
    if not summary_algo:
        del summary["algo"]
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def smax_rows(seeds, steps, test_from):
    """Rows per chunk per seed; test_return only from env_steps `test_from` (null or absent before)."""
    rows = []
    for k, step in enumerate(steps):
        for seed in seeds:
            row = {"seed": seed, "env_steps": step, "episodes": k + 1, "wall_time": 1.0 + k,
                   "train_return": seed + step / 100, "train_win_rate": 0.0}
            if step >= test_from:
                row["test_return"], row["test_win_rate"] = 10 * seed + step / 10, (seed + step / 100) / 10
            elif k % 2:
                row["test_return"] = None
            rows.append(row)
    return rows


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    ow_a = write_run(root / "ow-a", "ow-qmix", "3m",
                     [{"seed": s, "greedy_return": 1.0, "test_win_rate": OW_WINS[s], "test_episodes": 32}
                      for s in (0, 1, 2)],
                     smax_rows((0, 1, 2), (100, 200, 300), test_from=200))
    ow_b = write_run(root / "ow-b", "ow-qmix", "3m",
                     [{"seed": s, "greedy_return": 1.0, "test_win_rate": OW_WINS[s]} for s in (3, 4)],
                     smax_rows((3, 4), (150, 250, 350), test_from=0))
    qmix = write_run(root / "qmix", "qmix", "3m",
                     [{"seed": s, "greedy_return": 2.0, "test_win_rate": QMIX_WINS[s]} for s in range(5)],
                     smax_rows(range(5), (100, 200, 300), test_from=0))
    vdn = write_run(root / "vdn", "vdn", "matrix-game",
                    [{"seed": s, "greedy_joint_action": [0, 0], "greedy_return": VDN_RETURNS[s],
                      "final_train_return": 0.0} for s in (0, 1)],
                    [{"seed": s, "env_steps": t, "train_return": t / 10 + s, "loss": None}
                     for t in (16, 32, 48) for s in (0, 1)],
                    summary_algo=False)  # the algo name then comes from config.json
    return [ow_a, ow_b, qmix, vdn]


def test_load_runs_reads_scores_and_curves(run_dirs):
    ow_a, ow_b, qmix, vdn = load_runs(run_dirs)
    assert (ow_a.algo, ow_a.env, ow_a.seeds, ow_a.score_metric) == ("ow-qmix", "3m", [0, 1, 2], "test_win_rate")
    assert ow_a.scores == {0: 0.9, 1: 0.5, 2: 1.0}
    # Tests were logged (from step 200 on) with a win rate: the curve is the win rate (SMAX's
    # score), rows without it skipped.
    assert ow_a.curve_metric == "test_win_rate"
    x, y = ow_a.curves[1]
    assert x.tolist() == [200.0, 300.0] and y == pytest.approx([0.3, 0.4])
    assert ow_b.curves[4][0].tolist() == [150.0, 250.0, 350.0]
    assert (vdn.algo, vdn.score_metric, vdn.curve_metric) == ("vdn", "greedy_return", "train_return")
    assert vdn.scores == VDN_RETURNS
    assert vdn.curves[1][1] == pytest.approx([2.6, 4.2, 5.8])


def test_results_table_pools_runs_of_a_pair(run_dirs):
    rows = results_table(load_runs(run_dirs))
    assert [(r.env, r.algo, r.n_runs, r.n_seeds, r.metric) for r in rows] == [
        ("3m", "ow-qmix", 2, 5, "test_win_rate"), ("3m", "qmix", 1, 5, "test_win_rate"),
        ("matrix-game", "vdn", 1, 2, "greedy_return")]
    ow, qm, vdn = rows
    assert (ow.mean, ow.median, ow.iqm) == pytest.approx((3.7 / 5, 0.7, (0.6 + 0.7 + 0.9) / 3))
    assert (qm.mean, qm.median, qm.iqm) == pytest.approx((1.2 / 5, 0.2, (0.1 + 0.2 + 0.4) / 3))
    assert (vdn.mean, vdn.median, vdn.iqm) == pytest.approx((-2.0, -2.0, -2.0))
    for r, scores in ((ow, OW_WINS), (qm, QMIX_WINS), (vdn, VDN_RETURNS)):
        for k in ("mean", "median", "iqm"):
            lo, v, hi = getattr(r, f"{k}_lo"), getattr(r, k), getattr(r, f"{k}_hi")
            assert min(scores.values()) <= lo <= v <= hi <= max(scores.values())
            assert lo < hi


def test_markdown_and_csv(run_dirs, tmp_path):
    rows = results_table(load_runs(run_dirs))
    text = format_markdown(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + 3
    assert lines[2].startswith("| 3m | ow-qmix | test_win_rate | 5 | 0.740 [")
    assert "| 0.700 [" in lines[2] and "| 0.733 [" in lines[2]
    assert lines[3].startswith("| 3m | qmix | test_win_rate | 5 | 0.240 [") and "| 0.233 [" in lines[3]
    assert lines[4].startswith("| matrix-game | vdn | greedy_return | 2 | -2.000 [")
    r = rows[0]
    assert f"0.740 [{r.mean_lo:.3f}, {r.mean_hi:.3f}]" in lines[2]

    path = write_csv(rows, tmp_path / "r.csv")
    with open(path) as f:
        back = list(csv.DictReader(f))
    assert [(b["algo"], b["env"], int(b["n_seeds"])) for b in back] == [("ow-qmix", "3m", 5), ("qmix", "3m", 5),
                                                                        ("vdn", "matrix-game", 2)]
    assert float(back[0]["iqm"]) == pytest.approx(r.iqm, rel=1e-12)
    assert float(back[0]["iqm_hi"]) == pytest.approx(r.iqm_hi, rel=1e-12)


def test_mixed_score_metrics_of_one_pair_are_refused(run_dirs, tmp_path):
    other = write_run(tmp_path / "ow-c", "ow-qmix", "3m", [{"seed": 9, "greedy_return": 3.0}], [])
    with pytest.raises(ValueError, match="different scores.*ow-c"):
        results_table(load_runs([run_dirs[0], other]))


@pytest.mark.parametrize("make, message", [
    (lambda d: None, "no such directory"),
    (lambda d: d.mkdir(), "no summary.json"),
    (lambda d: (d.mkdir(), (d / "summary.json").write_text("{oops")), "summary.json is not valid JSON"),
    (lambda d: (d.mkdir(), (d / "summary.json").write_text('{"algo": "qmix", "env": "3m", "per_seed": []}')),
     "'per_seed' must be a non-empty list"),
    (lambda d: (d.mkdir(), (d / "summary.json").write_text(
        '{"algo": "qmix", "env": "3m", "per_seed": [{"seed": 0, "greedy_return": null}]}')),
     "seed 0 has no finite 'greedy_return'"),
    (lambda d: (d.mkdir(), (d / "summary.json").write_text(
        '{"algo": "qmix", "env": "3m", "per_seed": [{"seed": 0, "greedy_return": 1}]}'),
        (d / "metrics.jsonl").write_text('{"seed": 0}\nnot json\n')),
     "metrics.jsonl: line 2 is not valid JSON"),
])
def test_bad_run_directories_are_named(tmp_path, make, message):
    bad = tmp_path / "bad"
    make(bad)
    with pytest.raises(RunDirError) as info:
        load_runs([bad])
    text = str(info.value)
    assert message in text and str(bad) in text and "\n" not in text


# ---------------------------------------------------------------------------------------------
# Learning curves
# ---------------------------------------------------------------------------------------------

def test_plot_curves_writes_png_and_pdf(run_dirs, tmp_path):
    png, pdf = plot_curves(load_runs(run_dirs), tmp_path / "sub" / "curves", reps=200)
    assert png == tmp_path / "sub" / "curves.png" and pdf == tmp_path / "sub" / "curves.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000


def test_an_algorithm_keeps_its_colour_in_every_panel(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    rows = smax_rows([0], [100, 200], 0)
    runs = [write_run(tmp_path / name, algo, env, [{"seed": 0, "greedy_return": 1.0}], rows)
            for name, algo, env in (("a", "ow-qmix", "2s3z"), ("b", "qmix", "2s3z"), ("c", "qmix", "3m"))]
    drawn = []  # (panel title, label, colour) of each line, as plot_curves draws it
    plot = Axes.plot

    def recording_plot(ax, *args, **kwargs):
        drawn.append((ax, kwargs["label"].split(" ")[0], kwargs["color"]))
        return plot(ax, *args, **kwargs)

    monkeypatch.setattr(Axes, "plot", recording_plot)
    plot_curves(load_runs(runs), tmp_path / "c", reps=50)
    panels = {ax.get_title(): {label: color for a, label, color in drawn if a is ax} for ax, _, _ in drawn}
    # 3m has no ow-qmix: its qmix line is still qmix's colour in 2s3z, not the first colour.
    assert panels["2s3z"] == {"ow-qmix": "C0", "qmix": "C1"} and panels["3m"] == {"qmix": "C1"}


def test_plot_refuses_a_run_without_curves(tmp_path):
    run = write_run(tmp_path / "r", "qmix", "3m", [{"seed": 0, "greedy_return": 1.0}], [])
    with pytest.raises(ValueError, match="no learning curve"):
        plot_curves(load_runs([run]), tmp_path / "c")


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def test_cli_table(run_dirs, tmp_path, capsys):
    md, csv_path = tmp_path / "t.md", tmp_path / "t.csv"
    assert main(["table", *map(str, run_dirs), "--out", str(md), "--csv", str(csv_path)]) == 0
    out = capsys.readouterr().out
    assert out == md.read_text()
    assert "| 3m | ow-qmix | test_win_rate | 5 | 0.740 [" in out
    assert csv_path.read_text().startswith("algo,env,metric,n_runs,n_seeds,mean,")


def test_cli_table_scores_the_last_k_logged_tests(run_dirs, capsys):
    # qmix's seed s logged win rates (s + step / 100) / 10 at steps 100, 200, 300: the last two
    # average (s + 2.5) / 10, which over seeds 0..4 is 0.45.
    assert main(["table", str(run_dirs[2]), "--last-k", "2"]) == 0
    assert "| 3m | qmix | last-2 test_win_rate | 5 | 0.450 [" in capsys.readouterr().out
    # The matrix-game run logged no greedy test: refused in one line, not scored by its training return.
    assert main(["table", str(run_dirs[3]), "--last-k", "2"]) == 2
    assert "--last-k: some run logged no greedy test" in capsys.readouterr().err


def test_cli_table_without_files_only_prints(run_dirs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["table", str(run_dirs[2])]) == 0
    assert "| 3m | qmix |" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_cli_plot(run_dirs, tmp_path, capsys):
    assert main(["plot", *map(str, run_dirs), "--out", str(tmp_path / "c"), "--reps", "100"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "c.png"), str(tmp_path / "c.pdf")]
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "c.pdf").stat().st_size > 0


@pytest.mark.parametrize("command", ["table", "plot"])
def test_cli_missing_directory_exits_2_with_one_line(run_dirs, tmp_path, capsys, command):
    missing = tmp_path / "nope"
    assert main([command, str(run_dirs[0]), str(missing), "--out", str(tmp_path / "x")]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"wqmix {command}: error: {missing}: no such directory\n"
    assert captured.out == ""
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("args, message", [
    ([], "the following arguments are required: RUN_DIR"),
    (["d", "--bogus", "1"], "unrecognized arguments: --bogus"),
    (["d", "--reps", "0"], "argument --reps: '0' is invalid"),
    (["d", "--out"], "argument --out: expected one argument"),
])
def test_cli_bad_arguments_exit_2(capsys, args, message):
    assert main(["table", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
