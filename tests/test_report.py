"""The Snakemake report opens in a real browser (headless Chromium) and shows every figure of a run.

The report is a single self-contained HTML file whose content is drawn by JavaScript (React), so reading the
file's text proves little. The test takes the session's default run (``default_run`` in conftest.py: realism,
augmentation and pilot with the baselines) and its `snakemake --report`, appends a probe script to a copy of the
report and loads it in headless Chromium, which dumps the DOM once the probe is done. The probe uses the report like a reader: the main menu, each category and subcategory
(clicked), and the "view" button of every row, recording the rows' labels and the decoded size of every image
shown. Skipped only when Chromium is not installed (Debian: apt-get install chromium).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import subprocess

import pytest

PROBE = r"""
(function () {
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const menuItems = () => [...document.querySelectorAll("a")].filter((a) => a.querySelector("span"));
  async function click(label) {
    const item = menuItems().find((a) => a.querySelector("span").textContent.trim() === label);
    if (!item) throw new Error("no menu item '" + label + "' (have: " + menuItems().map((a) => a.textContent.trim()) + ")");
    item.click();
    await sleep(300);
  }
  async function readResults(key, out) {
    const rows = () => [...document.querySelectorAll("table tbody tr")];
    out.tables[key] = rows().map((tr) =>
      [...tr.querySelectorAll("td")].map((td) => td.innerText.trim()).filter(Boolean).join(" | ")
    );
    for (let i = 0; i < rows().length; i++) {
      const view = rows()[i].querySelector("a");  // the row's "view" button; tables are download links
      if (!view || view.hasAttribute("download")) continue;
      view.click();
      await sleep(300);
      const shown = results[app.state.resultPath];
      const img = [...document.querySelectorAll("img")].find((im) => shown && im.getAttribute("src") === shown.data_uri);
      if (img) {
        if (!img.complete) {
          await Promise.race([new Promise((resolve) => img.addEventListener("load", resolve)), sleep(5000)]);
        }
        out.images[app.state.resultPath] = img.naturalWidth;
      }
    }
  }
  async function probe() {
    const out = { menu: [], tables: {}, images: {}, results: Object.keys(results) };
    await sleep(500);
    out.menu = menuItems().map((a) => a.textContent.trim());
    for (const category of Object.keys(categories)) {
      const subcategories = Object.keys(categories[category]);
      for (const subcategory of subcategories) {
        app.setView({ navbarMode: "menu" });  // = the breadcrumb back to the main menu
        await sleep(300);
        await click(category);
        if (subcategories.length > 1) await click(subcategory);
        await readResults(category + "/" + subcategory, out);
      }
    }
    return out;
  }
  window.addEventListener("load", function () {
    probe()
      .catch((err) => ({ error: String(err && err.stack ? err.stack : err) }))
      .then((out) => {
        const pre = document.createElement("pre");
        pre.id = "scsynth-probe";
        pre.textContent = JSON.stringify(out);
        document.body.appendChild(pre);
      });
  });
})();
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")


def _png_width(path) -> int:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">I", header[16:20])[0]


def _probe_report(report, workdir) -> dict:
    """Load the report plus the probe in headless Chromium (offline, throw-away profile); return the probe's JSON."""
    text = report.read_text()
    end = text.rindex("</body>")
    page = workdir / "report_probe.html"
    page.write_text(text[:end] + "<script>" + PROBE + "</script>" + text[end:])
    profile = workdir / "chromium-profile"
    proc = subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-default-apps", "--disable-sync",
            f"--user-data-dir={profile}", "--virtual-time-budget=60000", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r'<pre id="scsynth-probe">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert match, f"the probe did not finish; Chromium said:\n{proc.stderr[-3000:]}"
    return json.loads(html.unescape(match.group(1)))


@pytest.fixture
def chromium():
    return _chromium()  # skips before the session's default run is made when there is no browser


@pytest.mark.slow
def test_report_opens_in_chromium_and_shows_every_figure(chromium, default_run):
    wf = default_run
    out = _probe_report(wf / "report.html", wf)
    assert "error" not in out, out.get("error")
    # The main menu lists the default run's three experiments as result categories.
    assert {"Workflow", "Statistics", "About", "Realism", "Augmentation", "Pilot studies"} <= set(out["menu"]), out[
        "menu"
    ]
    assert "Leaderboard" in out["menu"]  # the table over the three experiments
    # Every figure the run made is in the report, and opens as an image of its real size.
    figures = {str(p.relative_to(wf)) for p in (wf / "results").rglob("*.png")}
    assert {p for p in out["results"] if p.endswith(".png")} == figures
    # realism: 6 embeddings, ROC, leaderboard, training curves, 2 heatmaps; augmentation: F1, t-SNE; pilot: 6
    assert len(figures) >= 19, sorted(figures)
    assert out["images"] == {path: _png_width(wf / path) for path in figures}
    # Summary tables are listed too (as downloads).
    for table in ["results/realism/leaderboard.tsv", "results/realism/pbmc68k_demo/summary.tsv",
                  "results/realism/pbmc68k_demo/per_cluster.tsv",
                  "results/augmentation/pbmc68k_demo/f1.tsv", "results/leaderboard.tsv"]:  # fmt: skip
        assert table in out["results"], table
    # Rows carry the captions' labels per category/subcategory.
    rows = {key: " ; ".join(values) for key, values in out["tables"].items()}
    realism, augmentation = rows["Realism/pbmc68k_demo"], rows["Augmentation/pbmc68k_demo"]
    for label in ["ROC curves", "TSNE by set", "UMAP by cluster", "TSNE by marker", "leaderboard", "summary",
                  "marker correlations (activa): noise", "marker correlations (activa): upsample", "realism during training",
                  "ROC curves per cluster", "t-SNE of one cluster", "realism per cluster"]:  # fmt: skip
        assert label in realism, (label, realism)
    for label in ["F1 vs kept fraction", "t-SNE of the target cluster: upsample, 0.05, seed 0",
                  "F1 per fraction, seed and variant"]:  # fmt: skip
        assert label in augmentation, (label, augmentation)
