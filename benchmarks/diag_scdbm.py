"""Diagnose scDBM's realism on one dataset of the realism protocol: where its cells differ from real ones.

    python benchmarks/diag_scdbm.py --dataset pbmc3k --model /tmp/pbmc3k.pt --out diag.json [--trees 200]

The model is one saved by ``benchmarks/realism_protocol.py --model scdbm --save-model`` (fitted on the
protocol's training cells). Measured, against the real test cells:

* summary statistics: library size, detected genes, zero fraction per cell and per gene, per-gene mean and
  variance of counts, the mean-variance relation (slope of log variance on log mean; median overdispersion),
  the spread of the protocol's PCs (sd ratio generated / real);
* cell types: a 15-nearest-neighbour classifier on the real training cells' PCs labels the generated cells
  (proportions vs the test set), and how many generated cells are far from every real cell;
* the hidden layer: the states ``h1`` the generated cells come from, the exact ``p(h1)`` and the mean-field
  states of the real cells (which cell types each state carries);
* the Gibbs chain: total variation between the chains' ``h1`` states and the exact ``p(h1)`` after 0-500 steps,
  collapsed and blocked, from random states and from the data's mean-field states;
* the NB sampler: per-gene mean and variance of draws at fixed ``h1`` vs ``mu`` and ``mu + mu^2 / theta``;
* forests: on library size + detected genes only, and the protocol forest (``--trees``) on variants that
  separate the sampler from the model family: exact sampling, posterior-predictive cells (``h1`` drawn from
  the mean-field posterior of training cells), and two non-DBM references with the same noise model:
  per-cell-type independent NB (``cluster_nb``) and the same with each cell's library size (``cluster_nb_lib``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]


def _dense(X) -> np.ndarray:
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def summary(real: np.ndarray, gen: np.ndarray) -> dict:
    """Library size, detected genes, zeros and per-gene moments of counts (real vs generated)."""
    out = {}
    for name, X in (("real", real), ("gen", gen)):
        lib = X.sum(1)
        det = (X > 0).sum(1)
        out[name] = {
            "lib_q10_50_90": np.percentile(lib, [10, 50, 90]).round(1).tolist(),
            "log10_lib_sd": float(np.log10(np.maximum(lib, 1)).std()),
            "detected_q10_50_90": np.percentile(det, [10, 50, 90]).round(1).tolist(),
            "zero_fraction": float((X == 0).mean()),
        }
    mr, mg = real.mean(0), gen.mean(0)
    vr, vg = real.var(0), gen.var(0)
    ok = (mr > 0.05) & (mg > 0)
    out["gene_log2_mean_ratio_median_abs"] = float(np.median(np.abs(np.log2(mg[ok] / mr[ok]))))
    out["gene_log2_var_ratio_median"] = float(np.median(np.log2(vg[ok] / vr[ok])))
    out["gene_log2_var_ratio_q10_90"] = np.percentile(np.log2(vg[ok] / vr[ok]), [10, 90]).round(2).tolist()
    out["gene_zero_fraction_mean_abs_diff"] = float(np.abs((real == 0).mean(0) - (gen == 0).mean(0)).mean())
    for name, m, v in (("real", mr, vr), ("gen", mg, vg)):
        keep = (m > 0.05) & (v > 0)
        slope, _ = np.polyfit(np.log(m[keep]), np.log(v[keep]), 1)
        phi = (v[keep] - m[keep]) / m[keep] ** 2
        out[name] |= {"log_var_on_log_mean_slope": float(slope), "overdispersion_median": float(np.median(phi))}
    # gene-gene correlations of log1p counts among the 200 most expressed genes: structure beyond the means
    top = np.argsort(-mr)[:200]
    for name, X in (("real", real), ("gen", gen)):
        c = np.corrcoef(np.log1p(X[:, top]).T)
        out[name]["top200_abs_corr_mean"] = float(np.nanmean(np.abs(c[np.triu_indices_from(c, 1)])))
    return out


def forest_auc(a: np.ndarray, b: np.ndarray, *, trees: int, seed: int = 0) -> float:
    from scsynth_core.metrics.realism import rf_real_vs_generated

    return rf_real_vs_generated(a, b, n_trees=trees, seed=seed).auc_mean


def lib_features(X: np.ndarray) -> np.ndarray:
    return np.c_[np.log1p(X.sum(1)), np.log1p((X > 0).sum(1))]


def knn_labels(rep, train, gen_X: np.ndarray, k: int = 15) -> np.ndarray:
    import anndata as ad
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(k).fit(rep.transform(train), train.obs["cluster"].astype(str).to_numpy())
    return knn.predict(rep.transform(ad.AnnData(sp.csr_matrix(gen_X.astype(np.float32)), var=train.var)))


def state_codes(h1) -> np.ndarray:
    h = np.asarray(h1, dtype=np.int64)
    return h @ (2 ** np.arange(h.shape[1] - 1, -1, -1))


def tv(codes: np.ndarray, p: np.ndarray) -> float:
    return float(np.abs(np.bincount(codes, minlength=len(p)) / len(codes) - p).sum() / 2)


def cluster_nb(train, test_labels: np.ndarray, rng: np.random.Generator, *, with_library: bool) -> np.ndarray:
    """Independent NB per gene and cell type (gene-wise theta by the model's Fisher scoring), optionally scaled
    by the library size of a random training cell of the same type: the DBM's noise model with ideal means."""
    import torch

    from scsynth_core.models.scdbm import fit_nb_dispersion, sample_nb

    X = _dense(train.X).astype(np.float64)
    labels = train.obs["cluster"].astype(str).to_numpy()
    lib = X.sum(1)
    types = np.unique(labels)
    means = {t: X[labels == t].mean(0) for t in types}
    scale = np.ones(len(X))
    if with_library:
        for t in types:
            scale[labels == t] = lib[labels == t] / lib[labels == t].mean()
    mu = np.stack([means[t] for t in labels]) * scale[:, None]
    theta = fit_nb_dispersion(X, mu, lam=1.0)
    rows = []
    for t in test_labels:
        idx = rng.choice(np.flatnonzero(labels == t))
        rows.append(means[t] * (scale[idx] if with_library else 1.0))
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    return sample_nb(
        torch.as_tensor(np.stack(rows), dtype=torch.float32), torch.as_tensor(theta, dtype=torch.float32), gen
    ).numpy()


def main(argv=None) -> None:
    import anndata as ad
    import torch

    from scsynth_core.metrics.realism import realism_metrics
    from scsynth_core.metrics.representation import fit_protocol_representation
    from scsynth_core.models import load_model
    from scsynth_core.models.scdbm import sample_nb

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from realism_protocol import prepared_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--model", required=True, help="saved scDBM (realism_protocol.py --save-model)")
    parser.add_argument("--trees", type=int, default=200, help="trees of the variant forests")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.perf_counter()

    adata = prepared_dataset(args.dataset)
    train = adata[adata.obs["split"] == "train"].copy()
    test = adata[adata.obs["split"] == "test"].copy()
    rep = fit_protocol_representation(adata, n_components=50, seed=0)
    model = load_model(args.model)
    m = model.machine
    real = _dense(test.X).astype(np.float64)
    n = test.n_obs
    out: dict = {"dataset": args.dataset, "n_test": n, "n_train": int(train.n_obs), "hidden": list(m.hidden_sizes)}

    def metrics(X: np.ndarray, trees: int) -> dict:
        gen = ad.AnnData(sp.csr_matrix(X.astype(np.float32)), var=test.var)
        r = realism_metrics(test, gen, representation=rep, n_trees=trees, seed=0)
        return {"rf_auc": round(r["rf_auc_mean"], 4), "mmd": round(r["mmd"], 4)}

    gen = _dense(model.sample(n, seed=0).X).astype(np.float64)
    out["summary"] = summary(real, gen)
    out["lib_only_auc"] = forest_auc(lib_features(real), lib_features(gen), trees=args.trees)
    pr, pg = rep.transform(test), rep.transform(ad.AnnData(sp.csr_matrix(gen.astype(np.float32)), var=test.var))
    out["pc_sd_ratio_first10"] = (pg.std(0) / pr.std(0))[:10].round(2).tolist()
    out["pc_sd_ratio_11_50_median"] = float(np.median((pg.std(0) / pr.std(0))[10:]))
    out["pcs_only_first5_auc"] = forest_auc(pr[:, :5], pg[:, :5], trees=args.trees)

    # cell types of the generated cells, and distance to the nearest real training cell
    labels = knn_labels(rep, train, gen)
    types = sorted(test.obs["cluster"].astype(str).unique())
    real_share = test.obs["cluster"].astype(str).value_counts(normalize=True)
    gen_share = dict(zip(*np.unique(labels, return_counts=True), strict=True))
    out["type_shares"] = {t: [round(float(real_share.get(t, 0)), 3), round(gen_share.get(t, 0) / n, 3)] for t in types}
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1).fit(rep.transform(train))
    d_real, d_gen = nn.kneighbors(pr)[0][:, 0], nn.kneighbors(pg)[0][:, 0]
    out["nn_dist_to_train_median"] = [float(np.median(d_real)), float(np.median(d_gen))]
    out["gen_far_fraction"] = float((d_gen > np.percentile(d_real, 95)).mean())

    # the hidden layer
    with torch.no_grad():
        states = m.hidden_states()
        p_h1 = torch.softmax(m.h1_log_weights(states), 0).numpy()
        out["p_h1_states_over_1pct"] = int((p_h1 > 0.01).sum())
        out["p_h1_top"] = np.sort(p_h1)[::-1][:8].round(3).tolist()
        tr = torch.as_tensor(_dense(train.X), dtype=torch.float32)
        q1 = m.mean_field(tr)[0]
        post = state_codes((q1 > 0.5).numpy())
        out["data_posterior_state_share_vs_p_h1"] = {
            int(s): [round(float((post == s).mean()), 3), round(float(p_h1[s]), 3)]
            for s in np.unique(np.r_[post, np.flatnonzero(p_h1 > 0.01)])
        }
        out["mean_field_q_h1_far_from_binary"] = float(((q1 > 0.1) & (q1 < 0.9)).float().mean())
        tlabels = train.obs["cluster"].astype(str).to_numpy()
        out["types_per_posterior_state"] = {
            int(s): {t: int(c) for t, c in zip(*np.unique(tlabels[post == s], return_counts=True), strict=True)}
            for s in np.unique(post)
        }
        # aggregate posterior over all states (mean of the factorised q), vs p(h1)
        qd = q1.double()
        agg = torch.exp(torch.log(qd.clamp(1e-12)) @ states.t() + torch.log((1 - qd).clamp(1e-12)) @ (1 - states).t())
        out["tv_aggregate_posterior_vs_p_h1"] = float((agg.mean(0).numpy() - p_h1).__abs__().sum() / 2)

        # the Gibbs chain
        gibbs, floor = {}, {}
        for scheme in ("collapsed", "blocked"):
            chains = 20_000 if scheme == "collapsed" else 1_000  # blocked steps draw every gene's counts
            floor[scheme] = round(float(np.sqrt(len(p_h1) / (2 * np.pi * chains))), 4)
            for start_name in ("random", "data"):
                g = torch.Generator().manual_seed(0)
                if start_name == "random":
                    h = torch.bernoulli(torch.full((chains, m.hidden_sizes[0]), 0.5), generator=g)
                else:
                    idx = torch.randint(len(q1), (chains,), generator=g)
                    h = torch.bernoulli(q1[idx], generator=g)
                done, row = 0, {}
                for steps in (0, 1, 2, 5, 10, 50, 200, 500):
                    if scheme == "blocked" and steps > 200:
                        break
                    h = m.gibbs(h, steps - done, g, scheme=scheme)
                    done = steps
                    row[steps] = round(tv(state_codes(h.numpy()), p_h1), 4)
                gibbs[f"{scheme}/{start_name}"] = row
        out["gibbs_tv_to_exact_p_h1"] = gibbs
        out["gibbs_tv_sampling_noise_approx"] = floor

        # the NB sampler at a fixed h1: moments of 50,000 draws vs the NB's
        s_top = int(np.argmax(p_h1))
        mu = m.visible_mean(states[s_top : s_top + 1].float()).expand(50_000, -1)
        draws = sample_nb(mu, m.theta, torch.Generator().manual_seed(1)).double()
        mu0, th = mu[0].double(), m.theta.double()
        keep = mu0 > 0.05
        out["nb_sampler_mean_rel_err_median"] = float(((draws.mean(0) - mu0).abs() / mu0)[keep].median())
        var_nb = mu0 + mu0**2 / th
        out["nb_sampler_var_rel_err_median"] = float(((draws.var(0) - var_nb).abs() / var_nb)[keep].median())
        out["theta_q10_50_90"] = np.percentile(m.theta.numpy(), [10, 50, 90]).round(3).tolist()

    # forests on variants
    variants = {"protocol_gibbs": gen}
    model_exact = load_model(args.model)
    model_exact.params["sampler"] = "exact"
    variants["exact_sampler"] = _dense(model_exact.sample(n, seed=0).X)
    rng = np.random.default_rng(0)
    rows = rng.choice(train.n_obs, n, replace=False)
    with torch.no_grad():
        g = torch.Generator().manual_seed(2)
        h_post = torch.bernoulli(q1[rows], generator=g)
        variants["posterior_predictive"] = sample_nb(m.visible_mean(h_post), m.theta, g).numpy()
    test_labels = test.obs["cluster"].astype(str).to_numpy()
    variants["cluster_nb"] = cluster_nb(train, test_labels, rng, with_library=False)
    variants["cluster_nb_lib"] = cluster_nb(train, test_labels, rng, with_library=True)
    out["variants"] = {}
    for name, X in variants.items():
        out["variants"][name] = metrics(X, args.trees) | {
            "lib_only_auc": round(forest_auc(lib_features(real), lib_features(X), trees=args.trees), 4)
        }
        print(name, out["variants"][name], flush=True)
    out["seconds"] = round(time.perf_counter() - t_start, 1)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
