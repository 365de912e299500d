"""Throughput and memory of scGAN generation and training (not a test).

Measures, on the current machine:
  1. the fp32 matmul roofline: best of several 4096 x 4096 products (and the generator-shaped product
     4096 x 1024 @ 1024 x G), measured right before each timing because the cores may be shared;
  2. generation of N cells (default 100,000) x G genes (default 17,789, PBMC 68k) through the public
     ``ScGAN.sample`` path (chunks of 10,000 into a sparse AnnData): wall time, FLOPs (every matmul of the
     generator), achieved GFLOP/s and % of the roofline, and peak RSS of the process. The generator is
     untrained, with its output bias set so that a realistic fraction of the outputs is non-zero (``--density``,
     default 0.05; PBMC 68k cells have ~3-5% non-zero genes), as a trained generator's ReLU output is sparse;
  3. one training iteration (5 critic updates with gradient penalty + 1 generator update, batch 128) for each
     G in ``--train-genes``: ``--iters`` iterations after a warm-up, each followed by a short roofline probe
     (2048^3 product) so every iteration is compared with the machine's speed at that moment; FLOPs counted
     by a dispatch-mode counter over one iteration (forward, backward and the penalty's double backward).

Usage: ``python benchmarks/bench_scgan.py [--cells 100000] [--genes 17789] [--density 0.05]
[--train-genes 1000,2000,17789] [--iters 3] [--skip-generation] [--skip-training]``
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import Counter

import numpy as np


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # ru_maxrss is in KiB on Linux


def _current_rss_gb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 1024**3


def roofline(n_genes: int) -> tuple[float, float]:
    """Best GFLOP/s of a 4096^3 product and of the generator output product (4096 x 1024 @ 1024 x G)."""
    import torch

    def best(fn, flops, reps=5):
        fn()
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return flops / min(times) / 1e9

    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    square = best(lambda: a @ b, 2 * 4096**3)
    h, w = torch.randn(4096, 1024), torch.randn(n_genes, 1024)
    out = torch.empty(4096, n_genes)
    shaped = best(lambda: torch.mm(h, w.t(), out=out), 2 * 4096 * 1024 * n_genes)
    return square, shaped


class FlopCounter:
    """Counts matmul FLOPs of every aten op dispatched inside the context (forward, backward, double backward)."""

    def __init__(self) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_map
        from torch.utils.flop_counter import flop_registry

        counts: Counter = Counter()

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                import torch

                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                packet = func._overloadpacket
                if packet in flop_registry:

                    def shape(x):
                        return x.shape if isinstance(x, torch.Tensor) else x

                    counts[str(packet)] += flop_registry[packet](
                        *tree_map(shape, args), **tree_map(shape, kwargs), out_val=tree_map(shape, out)
                    )
                return out

        self.counts = counts
        self.mode = _Mode()

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def generation(args: argparse.Namespace) -> None:
    import torch

    from scsynth_core.models.scgan import Generator, ScGAN

    rss0 = _current_rss_gb()
    torch.manual_seed(0)
    model = ScGAN("paper")
    model.var_names = [f"g{i}" for i in range(args.genes)]
    generator = Generator(args.genes).eval()
    with torch.inference_mode():  # calibrate the output bias: a fraction `density` of outputs is positive
        pre = generator.output(generator.hidden(torch.randn(2048, 128)))
        generator.output.bias.copy_(-_column_quantile(pre, 1 - args.density))
        del pre
    model._generator = generator
    flops_per_cell = 2 * sum(m.weight.numel() for m in generator.linears) + 2 * generator.output.weight.numel()
    model.sample(2000, seed=1)  # warm-up
    square, shaped = roofline(args.genes)
    start = time.perf_counter()
    cells = model.sample(args.cells, seed=0, batch_size=args.chunk)
    elapsed = time.perf_counter() - start
    density = cells.X.nnz / (cells.shape[0] * cells.shape[1])
    gflops = flops_per_cell * args.cells / elapsed / 1e9
    print(f"roofline: 4096^3 matmul {square:.1f} GFLOP/s; generator-shaped matmul {shaped:.1f} GFLOP/s")
    print(
        f"generation: {args.cells:,} cells x {args.genes:,} genes in {elapsed:.2f} s "
        f"({args.cells / elapsed:,.0f} cells/s), non-zero fraction {density:.3f}"
    )
    print(
        f"  {flops_per_cell * args.cells / 1e12:.2f} TFLOP -> {gflops:.1f} GFLOP/s = {100 * gflops / square:.0f}% "
        f"of the 4096^3 roofline, {100 * gflops / shaped:.0f}% of the generator-shaped matmul"
    )
    print(
        f"  result: sparse X {cells.X.data.nbytes / 1e9 + cells.X.indices.nbytes / 1e9:.2f} GB; "
        f"process RSS before {rss0:.2f} GB, peak {_peak_rss_gb():.2f} GB "
        f"(dense float32 would be {args.cells * args.genes * 4 / 1e9:.1f} GB)"
    )


def _column_quantile(x, q: float):
    """Per-column quantile for matrices too large for torch.quantile (limit 16M elements per call)."""
    import torch

    return torch.cat([x[:, j : j + 4096].quantile(q, dim=0) for j in range(0, x.shape[1], 4096)])


def _nb_counts(n_cells: int, n_genes: int, seed: int = 0):
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    mean = rng.lognormal(-1.5, 1.5, n_genes)
    counts = rng.negative_binomial(2, 2 / (2 + mean[None, :] * rng.lognormal(0, 0.3, (n_cells, 1))))
    return ad.AnnData(sp.csr_matrix(counts.astype(np.float32)))


def _probe_gflops(reps: int = 2) -> float:
    """A short roofline probe (2048^3 fp32 product, best of ``reps``) to run between training iterations."""
    import torch

    a = torch.randn(2048, 2048)
    best = min(_timed(lambda: a @ a) for _ in range(reps))
    return 2 * 2048**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def training(args: argparse.Namespace) -> None:
    """Time 5:1 iterations; after each one a roofline probe runs, so each iteration gets its own roofline.

    The probe is hooked into the per-step loss check of the training loop (called once per generator step)
    and its time is excluded. The cores may be shared: the best iteration and its efficiency are reported
    with the median efficiency.
    """
    from scsynth_core.models import scgan
    from scsynth_core.models.scgan import ScGAN

    for n_genes in args.train_genes:
        data = _nb_counts(1024, n_genes)
        params = {"monitor_cells": 0, "log_every": 1, "checkpoint_every": 10**9}
        counter = FlopCounter()
        with counter:
            ScGAN("paper", **params).fit(data, seed=0, device="cpu", max_steps=1, progress=False)
        marks, probes = [], []
        original = scgan.check_finite

        # Bound as defaults (B023): the probe only runs inside this iteration's fit, but say so explicitly.
        def probed(losses, *, step, model, original=original, marks=marks, probes=probes):
            original(losses, step=step, model=model)
            marks.append(time.perf_counter())
            probes.append(_probe_gflops())
            marks.append(time.perf_counter())

        scgan.check_finite = probed
        try:
            ScGAN("paper", **params).fit(data, seed=0, device="cpu", max_steps=args.iters + 1, progress=False)
        finally:
            scgan.check_finite = original
        seconds = np.array([marks[2 * i] - marks[2 * i - 1] for i in range(1, len(probes))])  # skips warm-up
        roof = np.array(probes[1:])
        eff = counter.total / seconds / 1e9 / roof
        best = int(np.argmin(seconds))
        print(
            f"training, {n_genes:,} genes: {counter.total / 1e9:.1f} GFLOP per 5:1 iteration (batch 128); "
            f"fastest {seconds[best]:.3f} s = {counter.total / seconds[best] / 1e9:.1f} GFLOP/s "
            f"({100 * eff[best]:.0f}% of the {roof[best]:.0f} GFLOP/s probe beside it); "
            f"median efficiency {100 * np.median(eff):.0f}% over {len(seconds)} iterations "
            f"(times {', '.join(f'{t:.2f}' for t in seconds)} s)"
        )


def main(args: argparse.Namespace) -> None:
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if not args.skip_generation:
        generation(args)
    if not args.skip_training:
        training(args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=100_000)
    parser.add_argument("--genes", type=int, default=17_789)
    parser.add_argument("--chunk", type=int, default=10_000, help="cells per sample() chunk")
    parser.add_argument("--density", type=float, default=0.05, help="fraction of non-zero generated values")
    parser.add_argument("--train-genes", type=lambda s: [int(v) for v in s.split(",")], default=[1000, 2000, 17789])
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    main(parser.parse_args())
