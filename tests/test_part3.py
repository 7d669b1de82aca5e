"""Part 3: the GCN layer against message passing, Figure 2, the karate club, the scripts' CLIs."""
import json
import math

import networkx as nx
import pytest
import torch
import torch.nn.functional as F

from part1 import common
from part3 import figure2, train
from part3.experiments import oversmoothing, report_outputs
from part3.gcn import GCN, DeepGCN, GCNIILayer, GCNLayer, normalized_adjacency
from tests.scripts import ROOT, run_python, run_script

# Figure 2 as read off the assignment's PDF (shared/docs/figure2.md), typed in independently.
DOC_EDGES = ["A-B", "A-E", "A-F", "B-C", "B-D", "C-D", "D-F", "E-F"]
DOC_DEGREES = {"A": 3, "B": 3, "C": 2, "D": 3, "E": 2, "F": 3}



def random_graph(n_nodes, p, seed):
    graph = nx.gnp_random_graph(n_nodes, p, seed=seed)
    return graph, torch.tensor(nx.to_numpy_array(graph, nodelist=range(n_nodes)),
                               dtype=torch.float64)


def expected_adj_tilde():
    names = sorted(DOC_DEGREES)
    expected = torch.eye(len(names), dtype=torch.int64)
    for edge in DOC_EDGES:
        u, v = (names.index(x) for x in edge.split("-"))
        expected[u, v] = expected[v, u] = 1
    return expected


# ----- the layer (Question 3.1a) -----

@pytest.mark.parametrize("activation", [None, torch.relu])
@pytest.mark.parametrize("seed", [0, 1])
def test_layer_is_message_passing(activation, seed):
    graph, adj = random_graph(9, 0.35, seed)
    torch.manual_seed(seed)
    layer = GCNLayer(5, 3, activation=activation).double()
    h = torch.randn(9, 5, dtype=torch.float64)
    w = layer.weight.detach()
    deg = {i: graph.degree(i) + 1 for i in graph}  # d̃: the self-loop counts
    expected = torch.stack([
        sum(h[j] @ w / math.sqrt(deg[i] * deg[j]) for j in [i, *graph.neighbors(i)])
        for i in graph
    ])
    if activation is not None:
        expected = activation(expected)
    adj_hat = normalized_adjacency(adj)
    torch.testing.assert_close(layer(h, adj_hat), expected)
    torch.testing.assert_close(layer(h, adj_hat.to_sparse()), expected)


def test_weight_is_a_trained_parameter_with_glorot_initialisation():
    torch.manual_seed(0)
    layer = GCNLayer(40, 20)
    assert [p is layer.weight for p in layer.parameters()] == [True]
    assert layer.weight.shape == (40, 20)
    bound = math.sqrt(6 / (40 + 20))  # Glorot & Bengio's uniform range, as Kipf & Welling use
    assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
    assert abs(layer.weight.std().item() - bound / math.sqrt(3)) < 0.1 * bound


@pytest.mark.parametrize("seed", range(4))
def test_adj_hat_symmetric_with_spectrum_in_unit_interval(seed):
    graph, adj = random_graph(12, 0.3, seed)
    adj_hat = normalized_adjacency(adj)
    torch.testing.assert_close(adj_hat, adj_hat.T)
    eigenvalues = torch.linalg.eigvalsh(adj_hat)
    assert eigenvalues.min() >= -1 - 1e-9 and eigenvalues.max() <= 1 + 1e-9
    # The top eigenvalue is exactly 1, with eigenvector sqrt(d̃) (one per connected component).
    sqrt_deg = torch.tensor([math.sqrt(graph.degree(i) + 1) for i in graph], dtype=adj.dtype)
    torch.testing.assert_close(adj_hat @ sqrt_deg, sqrt_deg)


@pytest.mark.parametrize("skip", ["none", "residual"])
@pytest.mark.parametrize("activation", [torch.relu, None])
def test_deep_gcn_is_the_formula_written_out(skip, activation):
    """H¹ = σ(Â X W⁰); Hˡ⁺¹ = σ(Â Hˡ Wˡ), or Hˡ + σ(Â Hˡ Wˡ) with residual; Z = Â Hᴸ Wᴸ."""
    sigma = activation or (lambda x: x)
    torch.manual_seed(0)
    _, adj = random_graph(10, 0.4, 0)
    adj_hat, x = normalized_adjacency(adj), torch.randn(10, 6, dtype=torch.float64)
    model = DeepGCN(6, 8, 3, n_layers=5, skip=skip, activation=activation).double()
    assert len(model.hidden) == 3 and model.output.weight.shape == (8, 3)
    w = [model.input.weight, *(layer.weight for layer in model.hidden), model.output.weight]
    h = sigma(adj_hat @ x @ w[0])
    for w_l in w[1:-1]:
        h = h + sigma(adj_hat @ h @ w_l) if skip == "residual" else sigma(adj_hat @ h @ w_l)
    torch.testing.assert_close(model.embed(x, adj_hat), h)
    torch.testing.assert_close(model(x, adj_hat), adj_hat @ h @ w[-1])


@pytest.mark.parametrize("activation", [torch.relu, None])
def test_initial_residual_gcn_is_the_gcnii_formula_written_out(activation):
    """Hˡ⁺¹ = σ(((1 − α) Â Hˡ + α H¹)((1 − β_l) I + β_l Wˡ)), β_l = ln(λ/l + 1), with GCNII's α = 0.1, λ = 0.5."""
    sigma = activation or (lambda x: x)
    torch.manual_seed(0)
    _, adj = random_graph(10, 0.4, 2)
    adj_hat, x = normalized_adjacency(adj), torch.randn(10, 6, dtype=torch.float64)
    model = DeepGCN(6, 8, 3, n_layers=5, skip="initial", activation=activation).double()
    alpha, betas = 0.1, [math.log(1.5), math.log(1.25), math.log(7 / 6)]  # l = 1, 2, 3
    h1 = h = sigma(adj_hat @ x @ model.input.weight)
    for beta, layer in zip(betas, model.hidden, strict=True):
        mixed = (1 - alpha) * adj_hat @ h + alpha * h1
        h = sigma(mixed @ ((1 - beta) * torch.eye(8, dtype=torch.float64) + beta * layer.weight))
    torch.testing.assert_close(model.embed(x, adj_hat), h)
    torch.testing.assert_close(model(x, adj_hat), adj_hat @ h @ model.output.weight)
    assert [p.shape for p in model.parameters()] == [(6, 8), (8, 8), (8, 8), (8, 8), (8, 3)]


def test_a_gcnii_layer_alone_takes_the_papers_alpha_and_lambda():
    layer = GCNIILayer(4, layer_index=2)
    assert layer.alpha == 0.1 and layer.beta == pytest.approx(math.log(0.5 / 2 + 1))


def test_two_layer_gcn_is_the_formula_written_out():
    torch.manual_seed(0)
    _, adj = random_graph(10, 0.4, 1)
    adj_hat, x = normalized_adjacency(adj), torch.randn(10, 6, dtype=torch.float64)
    model = GCN(6, 8, 3).double().eval()  # eval: dropout off; in training, Kipf's 0.5
    expected = adj_hat @ torch.relu(adj_hat @ x @ model.gc1.weight) @ model.gc2.weight
    torch.testing.assert_close(model(x, adj_hat), expected)
    assert [p.shape for p in model.parameters()] == [(6, 8), (8, 3)]
    # In training, dropout on the input features and on the hidden layer, in that order.
    model.train()
    torch.manual_seed(1)
    got = model(x, adj_hat)
    torch.manual_seed(1)
    x_drop = F.dropout(x, 0.5, training=True)
    h_drop = F.dropout(torch.relu(adj_hat @ x_drop @ model.gc1.weight), 0.5, training=True)
    torch.testing.assert_close(got, adj_hat @ h_drop @ model.gc2.weight)
    assert not torch.allclose(got, expected)


def test_deep_gcn_needs_an_input_and_an_output_layer():
    DeepGCN(10, 8, 3, n_layers=2)
    with pytest.raises(ValueError, match="at least 2"):
        DeepGCN(10, 8, 3, n_layers=1)
    with pytest.raises(ValueError, match="skip"):
        DeepGCN(10, 8, 3, n_layers=4, skip="dense")


# ----- Figure 2 (Question 3.2) -----

def test_figure2_adj_tilde_matches_the_edge_list():
    adj = figure2.adjacency(figure2.NODES, figure2.EDGES)
    adj_tilde = (adj + torch.eye(6)).int()
    assert torch.equal(adj_tilde, expected_adj_tilde().int())
    assert dict(zip(figure2.NODES, (adj_tilde.sum(1) - 1).tolist(), strict=True)) == DOC_DEGREES


@pytest.mark.parametrize("graph", [
    nx.Graph([e.split("-") for e in DOC_EDGES]),
    nx.karate_club_graph(),
    nx.path_graph(7),
], ids=["figure2", "karate", "path"])
def test_propagation_reaches_each_node_after_its_shortest_path_length(graph):
    nodes = sorted(graph)
    adj = torch.tensor(nx.to_numpy_array(graph, nodelist=nodes, weight=None))
    signals = figure2.propagate_from(normalized_adjacency(adj), 0)
    for target, length in nx.single_source_shortest_path_length(graph, nodes[0]).items():
        assert figure2.updates_to_reach(signals, nodes.index(target)) == length


def test_propagation_signal_is_powers_of_adj_hat_applied_to_the_source():
    adj_hat = normalized_adjacency(figure2.adjacency(figure2.NODES, figure2.EDGES)).double()
    signals = figure2.propagate_from(adj_hat, figure2.NODES.index("C"))
    source = torch.zeros(6, dtype=torch.float64)
    source[figure2.NODES.index("C")] = 1
    expected = torch.stack([torch.linalg.matrix_power(adj_hat, k) @ source for k in range(4)])
    # E is the last node reached, after 3 updates: then the loop stops.
    torch.testing.assert_close(signals, expected)


def test_propagation_never_reaches_another_component():
    adj = torch.tensor(nx.to_numpy_array(nx.Graph([(0, 1), (2, 3)]), nodelist=range(4)))
    signals = figure2.propagate_from(normalized_adjacency(adj), 0)
    assert figure2.updates_to_reach(signals, 3) is None
    assert len(signals) == 2  # stops at the first update that reaches no new node


@pytest.mark.parametrize("n_nodes", [2, 6])
def test_propagation_with_a_wrong_adj_hat_ends(n_nodes):
    """Without self-loops the signal hops between the two sides of a bipartite graph, so the set
    of reached nodes never settles: the loop must end anyway, after at most N - 1 updates."""
    adj = torch.tensor(nx.to_numpy_array(nx.path_graph(n_nodes)))
    degree = adj.sum(1)
    no_self_loops = adj / (degree[:, None] * degree[None, :]).sqrt()
    signals = figure2.propagate_from(no_self_loops, 0)
    assert 2 <= len(signals) <= n_nodes


def test_format_matrix_right_aligns_columns_under_their_labels():
    text = figure2.format_matrix(torch.tensor([[1.0, 22.5], [333.5, 4.0]]), lambda x: f"{x:.1f}",
                                 row_labels=["a", "bb"], col_labels=["X", "Y"])
    assert text.splitlines() == ["       X     Y",
                                 "a    1.0  22.5",
                                 "bb 333.5   4.0"]


@pytest.mark.new_python
def test_figure2_script_starts_from_the_repository_root():
    result = run_python("part3/figure2.py", "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: figure2.py"), result.stderr


def test_figure2_help_says_what_it_does_and_where_the_results_go(capsys):
    with pytest.raises(SystemExit) as exit_info:
        figure2.main(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and figure2.__doc__.splitlines()[0] in out.replace("\n", " ")
    assert "where figure2.json goes" in out


def test_figure2_script(tmp_path, capsys):
    out = tmp_path / "new" / "folders"  # made as needed
    figure2.main(["--out_dir", str(out), "--fig_dir", str(out), "--tex_dir", str(out)])
    lines = capsys.readouterr().out.splitlines()
    # Nothing is random: the results are the committed ones, byte for byte.
    assert (out / "figure2.json").read_text() == (ROOT / "part3" / "results" / "figure2.json").read_text()
    assert lines[-1] == " ".join(["wrote", *(str(out / name) for name in (
        "figure2.json", "figure2_graph.png", "figure2_spread.png", "part3_figure2.tex"))])
    start = lines.index("Ã = A + I (Eq. 16):")
    assert lines[start + 1].split() == list("ABCDEF")
    rows = [line.split() for line in lines[start + 2:start + 8]]
    assert [row[0] for row in rows] == list("ABCDEF")
    assert torch.equal(torch.tensor([[int(x) for x in row[1:]] for row in rows]),
                       expected_adj_tilde())
    start = lines.index("Â = D̃^-½ Ã D̃^-½ (Eq. 15):")
    printed = [[float(x) for x in line.split()[1:]] for line in lines[start + 2:start + 8]]
    adj_hat = normalized_adjacency(expected_adj_tilde().double() - torch.eye(6, dtype=torch.float64))
    assert torch.allclose(torch.tensor(printed, dtype=torch.float64), adj_hat, atol=5e-4)
    steps = nx.shortest_path_length(nx.Graph([e.split("-") for e in DOC_EDGES]), "C", "E")
    start = lines.index("signal from C after k updates (Eq. 14 with W = 1):")
    assert [line.split()[0] for line in lines[start + 2:start + 3 + steps]] == \
        [f"k={k}" for k in range(steps + 1)]
    # Run again into the same folders (as after `git pull`): the results are rewritten.
    figure2.main(["--out_dir", str(out), "--fig_dir", str(out), "--tex_dir", str(out)])
    assert capsys.readouterr().out.splitlines()[-1] == lines[-1]
    answer = [line for line in lines if "C" in line and "E" in line and "->" in line]
    path = json.loads((out / "figure2.json").read_text())["shortest_path"]
    assert answer == [f"C -> E: {steps} updates (propagation: {steps}, shortest path {'-'.join(path)}: {steps})"]
    for name in ("figure2_graph.png", "figure2_spread.png", "figure2.json"):
        assert (out / name).stat().st_size > 0
    res = json.loads((out / "figure2.json").read_text())
    graph = nx.Graph([e.split("-") for e in DOC_EDGES])
    assert res["nodes"] == list("ABCDEF") and sorted(map(sorted, res["edges"])) == sorted(map(sorted, graph.edges))
    assert (res["source"], res["target"]) == ("C", "E")
    assert res["updates_by_propagation"] == res["updates_by_shortest_path"] == steps
    path = res["shortest_path"]
    assert path[0] == "C" and path[-1] == "E" and len(path) == steps + 1
    assert all(graph.has_edge(u, v) for u, v in zip(path, path[1:], strict=False))
    assert torch.equal(torch.tensor(res["adj_tilde"]), expected_adj_tilde())
    adj_hat = normalized_adjacency(expected_adj_tilde().double() - torch.eye(6, dtype=torch.float64))
    # saved rounded to 6 decimals, so that every CPU writes the same file
    torch.testing.assert_close(torch.tensor(res["adj_hat"], dtype=torch.float64), adj_hat, atol=6e-7, rtol=0)
    torch.testing.assert_close(torch.tensor(res["signal_per_layer"], dtype=torch.float64),
                               figure2.propagate_from(adj_hat, 2), atol=1e-6, rtol=1e-6)
    assert rf"\newcommand{{\PartThreeCtoEUpdates}}{{{steps}}}" in (
        out / "part3_figure2.tex").read_text()


# ----- karate club -----

def test_karate_data():
    adj_hat, features, labels, factions = train.load_karate()
    assert adj_hat.shape == (34, 34) and torch.equal(features, torch.eye(34))
    # 78 friendships, each counted once whatever its weight (Ã has 34 + 2 * 78 non-zeros).
    assert int((adj_hat > 0).sum()) == 34 + 2 * 78
    assert labels[0] != labels[33] and sorted(labels.bincount().tolist()) == [17, 17]
    assert factions == sorted({d["club"] for _, d in nx.karate_club_graph().nodes(data=True)})


def test_train_script_quick(tmp_path):
    result = run_script("part3.train", "--n_seeds", "2", "--epochs", "50",
                        "--out_dir", str(tmp_path), "--fig_dir", str(tmp_path),
                        "--tex_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    res = json.loads((tmp_path / "karate.json").read_text())
    assert res["config"]["seeds"] == [0, 1] and len(res["accuracies"]) == 2
    assert res["accuracy_mean"] == pytest.approx(sum(res["accuracies"]) / 2)
    assert res["accuracy_mean"] >= 0.9
    assert f"{res['accuracy_mean']:.3f}" in result.stdout
    assert (tmp_path / "karate_embeddings.png").stat().st_size > 0
    tex = (tmp_path / "part3_karate.tex").read_text()
    assert rf"\newcommand{{\PartThreeKarateAccuracyMean}}{{{res['accuracy_mean']:.3f}}}" in tex



def test_train_default_run_rewrites_the_committed_results_byte_for_byte(tmp_path, capsys):
    # `python part3/train.py` in the README writes part3/results and report/figures: it must
    # leave `git status` clean, so the saved outputs are rounded where CPUs differ.
    train.main(["--out_dir", str(tmp_path), "--fig_dir", str(tmp_path), "--tex_dir", str(tmp_path)])
    assert (tmp_path / "karate.json").read_bytes() == (ROOT / "part3/results/karate.json").read_bytes()
    assert (tmp_path / "karate_embeddings.png").read_bytes() == \
        (ROOT / "report/figures/karate_embeddings.png").read_bytes()
    assert "0.963 ± 0.013" in capsys.readouterr().out


@pytest.mark.parametrize("main, argv", [
    (train.main, ["--n-seeds", "1", "--epochs", "1", "--weight-decay", "0"]),
    (oversmoothing.main, ["--depths", "2", "--n-seeds", "1", "--epochs", "1", "--weight-decay", "0"]),
])
def test_the_old_kebab_case_option_names_still_work(main, argv, tmp_path):
    main([*argv, "--out-dir", str(tmp_path), "--fig-dir", str(tmp_path), "--tex-dir", str(tmp_path)])
    res = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert res["config"]["weight_decay"] == 0 and res.get("seeds", res["config"].get("seeds")) == [0]
    report_outputs.main(["--results-dir", str(tmp_path), "--fig-dir", str(tmp_path / "again"),
                         "--tex-dir", str(tmp_path / "again")])
    assert any((tmp_path / "again").glob("*.png"))

# ----- over-smoothing (Question 3.1b) -----

def path_graph_adj_hat():
    """Â of the path a - b - c (d̃ = 2, 3, 2 with the self-loops)."""
    return normalized_adjacency(torch.tensor([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=torch.float64))


def test_dirichlet_energy_of_a_small_graph_by_hand():
    adj_hat = path_graph_adj_hat()
    # H = (1, 0, 0): only the edge a-b differs, by 1/√2 - 0; ‖H‖² = 1.
    assert oversmoothing.dirichlet_energy(torch.tensor([[1.0], [0.0], [0.0]]), adj_hat) == \
        pytest.approx(0.5)
    # H = (1, 1, 1): both edges differ by 1/√2 - 1/√3; ‖H‖² = 3.
    assert oversmoothing.dirichlet_energy(torch.ones(3, 1), adj_hat) == \
        pytest.approx(2 * (1 / math.sqrt(2) - 1 / math.sqrt(3)) ** 2 / 3)
    # H = (√2, √3, √2) = √d̃: what Âᵏ H converges to, no differences left.
    assert oversmoothing.dirichlet_energy(
        torch.tensor([[math.sqrt(2)], [math.sqrt(3)], [math.sqrt(2)]]), adj_hat) == \
        pytest.approx(0, abs=1e-15)
    assert oversmoothing.dirichlet_energy(torch.zeros(3, 4), adj_hat) is None


def test_dirichlet_energy_of_a_constant_signal_is_zero():
    # On a regular graph (a cycle) d̃ is the same everywhere: constant rows have no energy.
    cycle = torch.tensor(nx.to_numpy_array(nx.cycle_graph(7)), dtype=torch.float64)
    h = torch.tensor([[3.0, -1.0, 2.0]]).repeat(7, 1)
    assert oversmoothing.dirichlet_energy(h, normalized_adjacency(cycle)) == pytest.approx(0, abs=1e-15)
    # On the karate club, rows √d̃_i c have none: the limit of repeated averaging.
    adj_hat = train.load_karate()[0]
    sqrt_deg = (adj_hat != 0).sum(dim=1).double().sqrt()
    assert oversmoothing.dirichlet_energy(sqrt_deg[:, None] * torch.tensor([[1.0, -2.0]]), adj_hat) \
        == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_dirichlet_energy_is_the_laplacian_quadratic_form(seed):
    graph, adj = random_graph(12, 0.3, seed)
    adj_hat = normalized_adjacency(adj)
    h = torch.randn(12, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    # networkx's normalised Laplacian of the graph with self-loops: I - D̃^-½ Ã D̃^-½.
    graph.add_edges_from((v, v) for v in graph)
    laplacian = torch.tensor(nx.normalized_laplacian_matrix(graph, nodelist=range(12)).toarray())
    expected = (torch.trace(h.T @ laplacian @ h) / h.pow(2).sum()).item()
    assert oversmoothing.dirichlet_energy(h, adj_hat) == pytest.approx(expected)
    assert oversmoothing.dirichlet_energy(1e-6 * h, adj_hat) == pytest.approx(expected)  # scale-free
    if nx.is_connected(graph):
        lambda_2 = sorted(nx.normalized_laplacian_spectrum(graph))[1]
        assert oversmoothing.laplacian_lambda_2(adj_hat) == pytest.approx(lambda_2)


def test_repeated_averaging_drives_the_energy_to_zero():
    adj_hat = train.load_karate()[0]
    energies = [oversmoothing.propagation_only(adj_hat, torch.eye(34), k) for k in (0, 1, 4, 16, 63)]
    assert energies == sorted(energies, reverse=True) and energies[-1] < 1e-6


def test_dead_fraction_counts_units_zero_at_every_node():
    h = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    assert oversmoothing.dead_fraction(h) == 0.5
    assert oversmoothing.mean_length(h) == pytest.approx(1.0)


def test_oversmoothing_quick_and_figures_from_saved_results(tmp_path):
    oversmoothing.main(["--depths", "2", "4", "--n_seeds", "1", "--epochs", "5",
                        "--out_dir", str(tmp_path), "--fig_dir", str(tmp_path),
                        "--tex_dir", str(tmp_path)])
    res = json.loads((tmp_path / "oversmoothing.json").read_text())
    assert res["depths"] == [2, 4] and res["seeds"] == [0]  # one seed: no std
    for variant in oversmoothing.VARIANTS:
        assert res[variant]["trained"]["accuracy"]["n"] == [1, 1]
        assert res[variant]["trained"]["accuracy"]["std"] == [None, None]
        assert len(res[variant]["init"]["energy"]["per_seed"][1]) == 1
        # the deepest networks' layers H¹ ... H³, per seed
        assert [len(s) for s in res["layers"][variant]["init"]["length"]] == [3]
    # report_outputs.py redraws and rewrites from the saved results alone.
    for name in ("oversmoothing.png", "oversmoothing_layers.png", "part3_oversmoothing.tex",
                 "part3_oversmoothing_table.tex"):
        (tmp_path / name).unlink()
    report_outputs.main(["--results_dir", str(tmp_path), "--fig_dir", str(tmp_path / "again"),
                 "--tex_dir", str(tmp_path / "again")])
    assert (tmp_path / "again" / "oversmoothing.png").stat().st_size > 0
    assert (tmp_path / "again" / "oversmoothing_layers.png").stat().st_size > 0
    assert r"\begin{tabular}" in (tmp_path / "again" / "part3_oversmoothing_table.tex").read_text()
    assert r"\newcommand{\PartThreeOSInitialAccFour}" in \
        (tmp_path / "again" / "part3_oversmoothing.tex").read_text()


def test_a_diverged_karate_run_says_so_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """Adam's bounded steps keep any allowed --lr finite here, so the divergence is forced with a
    non-finite feature: the run stops with one line and writes no results, figure or table."""
    adj_hat, features, labels, factions = train.load_karate()
    features = features.clone()
    features[0, 0] = float("inf")
    monkeypatch.setattr(train, "load_karate", lambda: (adj_hat, features, labels, factions))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        common.run(lambda: train.main(["--n_seeds", "1", "--out_dir", str(out), "--fig_dir", str(out),
                                       "--tex_dir", str(out)]), "train.py")
    err = capsys.readouterr().err
    assert exit_.value.code == 1 and "diverged at epoch 0" in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert run_script("part3/train.py", "--lr", "1e300").returncode == 2  # refused before training
