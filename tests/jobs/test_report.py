"""The HTML report of a run (jobs/report): summary, index, pictures within a size budget,
pages for big runs, and (where a headless Chromium can be had) the page in a browser."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from lightning_extremal.cli import main
from lightning_extremal.jobs.report.figures import smooth_step_pairs
from lightning_extremal.jobs.report.job import PAIR_BUDGET, write_report
from tests.helpers import AREAS, NUM_IMAGES, TINY_MODEL, run_job_on_one_thread

#: The big run: images, and pairs per page of its paged report.
BIG_IMAGES = 64
PER_PAGE = 24
#: Most bytes of one HTML page, whatever the run.
PAGE_BUDGET = 10_000_000


@pytest.fixture(scope="module")
def big_run(tmp_path_factory) -> Path:
    """A finished run of 64 synthetic 32-px images, TinyConvNet, 2 steps from the Grad-CAM warm
    start (126 of 128 masks converged: the report shows both kinds), no logger."""
    out = tmp_path_factory.mktemp("bigrun") / "run"
    run_job_on_one_thread(
        [
            f"model={TINY_MODEL}",
            "data=synthetic",
            f"data.num_images={BIG_IMAGES}",
            "data.size=32",
            "data.batch_size=32",
            "max_iter=2",
            f"areas=[{AREAS[0]},{AREAS[1]}]",
            "logger=none",
            "trainer.progress=false",
            "trainer.accelerator=cpu",
            "step=4",
            "sigma=8",
            f"output_dir={out}",
        ]
    )
    return out


@pytest.fixture(scope="module")
def paged_report(big_run) -> list[Path]:
    """The big run's report at PER_PAGE pairs a page: its pages in order."""
    first = write_report(big_run, pairs_per_page=PER_PAGE)
    return [first] + sorted(big_run.glob("report-*.html"), key=lambda p: int(p.stem[7:]))


def referenced(page: Path) -> list[str]:
    """Every src and href of a page that is a file (not a data URI, not an anchor)."""
    text = page.read_text()
    targets = re.findall(r'(?:src|href)="([^"#]*)(?:#[^"]*)?"', text)
    return [t for t in targets if t and not t.startswith("data:")]


def assert_files_exist(page: Path) -> None:
    for target in referenced(page):
        assert not re.match(r"^[a-z]+:|^/", target), f"{target} is not a relative path"
        assert (page.parent / target).is_file(), f"{page.name} references missing {target}"


def test_report_of_a_run_with_mask_evolution(csv_job):
    assert main(["report", str(csv_job)]) == 0
    page = csv_job / "report.html"
    text = page.read_text()
    for i in range(NUM_IMAGES):
        assert f'id="pair-shape{i}"' in text
    assert text.count('<section class="pair"') == NUM_IMAGES
    # per pair: the image and one overlay per area embedded, linked to full-size files
    assert text.count('<a href="report_files/') >= NUM_IMAGES * (1 + len(AREAS))
    assert text.count(".gif") == NUM_IMAGES  # the mask-evolution GIF, a file beside the page
    assert_files_exist(page)
    assert "method.jitter is on" in text  # the zig-zag explained (jitter is on by default)
    # Convergence: the count as summary.json has it, each unconverged mask listed and marked.
    convergence = json.loads((csv_job / "summary.json").read_text())["convergence"]
    done, total = convergence["converged"], convergence["masks"]
    assert f"masks converged: {done}/{total} " in text
    assert _listed_not_converged(text) == convergence["not_converged"]
    assert text.count('<tr class="bad">') == total - done


def _listed_not_converged(text: str) -> list[str]:
    block = re.search(r'<ul class="not-converged">(.*?)</ul>', text, re.S)
    return re.findall(r"<li><a [^>]*>([^<]*)</a></li>", block.group(1)) if block else []


@pytest.mark.slow
def test_big_report_is_within_budget_and_complete(paged_report, big_run):
    summary = json.loads((big_run / "summary.json").read_text())
    pairs = len({(row["image"], row["target"]) for row in summary["results"]})
    assert pairs == BIG_IMAGES
    sections = []
    for page in paged_report:
        text = page.read_text()
        shown = text.count('<section class="pair"')
        size = page.stat().st_size
        assert size <= PAGE_BUDGET and size <= PAIR_BUDGET * shown, (page.name, size, shown)
        assert_files_exist(page)
        sections += re.findall(r'<section class="pair" data-pair="([^"]+)"', text)
    assert len(sections) == len(set(sections)) == BIG_IMAGES
    first = paged_report[0].read_text()
    # The summary counts what summary.json counts.
    convergence = summary["convergence"]
    assert f"{BIG_IMAGES} (image, target) pairs, {convergence['masks']} masks" in first
    assert f"masks converged: {convergence['converged']}/{convergence['masks']} " in first
    assert len(_listed_not_converged(first)) == len(convergence["not_converged"])
    assert first.count("<tr") - 1 == len(summary["results"])  # index: a row per mask
    assert first.count('<img alt="histograms across masks"') == 1


@pytest.mark.slow
def test_report_pages_split_at_n_and_link_each_other(paged_report):
    assert [p.name for p in paged_report] == ["report.html", "report-2.html", "report-3.html"]
    counts = [p.read_text().count('<section class="pair"') for p in paged_report]
    assert counts == [PER_PAGE, PER_PAGE, BIG_IMAGES - 2 * PER_PAGE]
    for k, page in enumerate(paged_report):
        text = page.read_text()
        assert ('id="summary"' in text) == (k == 0)
        for other in paged_report:
            if other != page:
                assert f'href="{other.name}"' in text
    # Index links go to the page that shows the pair.
    first = paged_report[0].read_text()
    last_pair = re.findall(r'data-pair="([^"]+)"', paged_report[2].read_text())[-1]
    assert f'href="report-3.html#pair-{last_pair}"' in first


@pytest.mark.slow
def test_rewriting_with_fewer_pages_removes_stale_pages(csv_job, tmp_path):
    out = tmp_path / "one.html"
    write_report(csv_job, out, pairs_per_page=1)
    assert (tmp_path / "one-2.html").is_file()
    (tmp_path / "one_files" / "mine.png").write_bytes(b"")  # not the report's: kept
    assert write_report(csv_job, out) == out
    assert not (tmp_path / "one-2.html").exists()
    assert (tmp_path / "one_files" / "mine.png").exists()
    assert out.read_text().count('<section class="pair"') == NUM_IMAGES
    assert_files_exist(out)


def test_smoothing_over_step_pairs_removes_the_jitter_zigzag():
    steps = torch.arange(10, dtype=torch.float64)
    zigzag = (0.1 * steps + torch.tensor([0.5, -0.5]).repeat(5)).numpy()
    smooth = smooth_step_pairs(zigzag)
    assert smooth.shape == (9,)
    assert (abs(smooth[1:] - smooth[:-1] - 0.1) < 1e-12).all()  # a straight line is left


def test_report_errors_name_the_problem(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no run directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "chunks" in capsys.readouterr().err


# --------------------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Playwright: Playwright's own build where installed, else
    the system's (Debian's chromium, which `make setup` installs as root)."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')"
    )
    system = shutil.which("chromium") or shutil.which("chromium-browser")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(args=args)
        except Exception as own_missing:
            if not system:
                first_line = str(own_missing).strip().splitlines()[0]
                pytest.skip(
                    "no headless Chromium: none on PATH (`make browser` installs Debian's, "
                    f"as root) and Playwright's own cannot start ({first_line})"
                )
            launched = playwright.chromium.launch(executable_path=system, args=args)
        yield launched
        launched.close()


def _images_loaded(tab) -> list[str]:
    """Loads every image (lazy ones too); the sources of those that did not decode."""
    return tab.evaluate(
        """async () => {
            const images = Array.from(document.images);
            images.forEach(img => { img.loading = "eager"; });
            const ok = await Promise.all(images.map(img => img.decode().then(
                () => img.naturalWidth > 0, () => false)));
            return images.filter((img, i) => !ok[i]).map(img => img.src.slice(0, 80));
        }"""
    )


def _column(tab, col: int) -> list[str]:
    return tab.eval_on_selector_all(
        "table.index tbody tr",
        f"rows => rows.filter(r => r.style.display !== 'none').map(r => r.cells[{col}].textContent)",
    )


@pytest.mark.slow
def test_report_in_a_browser_loads_every_image_and_sorts(browser, paged_report):
    tab = browser.new_page()
    for page in paged_report[:2]:
        tab.goto(page.resolve().as_uri())
        assert tab.locator("img").count() > 0
        assert _images_loaded(tab) == [], page.name
    tab.goto(paged_report[0].resolve().as_uri())
    reward = 4  # image, target, area, achieved, reward, IoU, converged
    tab.click("table.index th:nth-child(5)")
    values = [float(v) for v in _column(tab, reward)]
    assert values == sorted(values) and len(values) == 2 * BIG_IMAGES
    tab.click("table.index th:nth-child(5)")
    assert [float(v) for v in _column(tab, reward)] == sorted(values, reverse=True)
    wanted = _column(tab, 0)[0]
    tab.fill("#filter", wanted)
    images = _column(tab, 0)
    assert images and all(wanted in v for v in images) and len(images) < 2 * BIG_IMAGES
    assert tab.inner_text("#shown") == str(len(images))
    tab.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["channel", "layer-spatial", "invert", "diff"])
def test_report_of_each_layer_run_kind(kind, tmp_path, capsys):
    """`report` on a layer run (it used to fail: KeyError 'areas' / 'targets'): one page with
    summary.json's rows and every figure the job drew, linked where it lies."""
    from tests.helpers import write_images

    images = tmp_path / "images"
    write_images(images, 2, size=(32, 32))
    out = tmp_path / "run"
    args = [f"model={TINY_MODEL}", f"data={images}", "data.size=32", "logger=none"]
    args += ["max_iter=5", "invert_iter=5", "areas=[0.25]", "trainer.progress=false"]
    assert main(["run", f"method={kind}", "layer=features.2", f"output_dir={out}", *args]) == 0
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert f"report in {out / 'report.html'}" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert f"<h1>Layer run ({kind})" in page
    rows = json.loads((out / "summary.json").read_text())["results"]
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr>") == len(rows) > 0
    drawn = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    linked = sorted(re.findall(r'<img[^>]* src="([^"]+)"', page))
    assert linked == drawn and drawn  # every figure, each where it lies
    if kind != "invert":
        assert "Masks converged:" in page
