"""The HTML report of a run (jobs/report): summary, index, pictures within a size budget,
pages for big runs, and (where a headless Chromium can be had) the page in a browser."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_extremal.cli import main
from lightning_extremal.jobs.report.figures import curves_svg, smooth_step_pairs
from lightning_extremal.jobs.report.job import INDEX_ROWS, write_report
from lightning_extremal.jobs.report.page import LISTED_MASKS, number
from tests.helpers import AREAS, NUM_IMAGES, TINY_MODEL, run_job_on_one_thread
from tests.jobs.synthetic_run import SYNTHETIC_AREAS, build_run

#: The big run: images, and pairs per page of its paged report.
BIG_IMAGES = 64
PER_PAGE = 24
#: Most bytes of the report per pair beyond its first page (#26: it was ~140 KB a pair).
PAIR_BYTES = 10_000
#: Pairs of the synthetic runs: the size test's, and the browser's.
SIZE_PAIRS = 200
BROWSER_PAIRS = 1000


@pytest.fixture(scope="module")
def big_run(tmp_path_factory) -> Path:
    """A finished run of 64 synthetic 32-px images, TinyConvNet, 2 steps from the Grad-CAM warm
    start (2 steps: masks that did not converge, which the report lists), no logger."""
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
    text = re.sub(r"<script>.*?</script>", "", page.read_text(), flags=re.S)  # inline code
    targets = re.findall(r'(?:src|href)="([^"#]*)(?:#[^"]*)?"', text)
    return [t for t in targets if t and not t.startswith("data:")]


def assert_files_exist(page: Path) -> None:
    text = page.read_text()
    sheets = re.findall(r"url\(([^)]+)\)", text)
    first = page.stem.rsplit("-", 1)[0] if page_number(page) > 1 else page.stem
    assert sheets == [f"{first}_files/thumbs-{page_number(page)}.jpg"]  # its thumbnail sheet
    for target in referenced(page) + sheets:
        assert not re.match(r"^[a-z]+:|^/", target), f"{target} is not a relative path"
        assert (page.parent / target).is_file(), f"{page.name} references missing {target}"


def page_number(page: Path) -> int:
    """1 for report.html, k for report-k.html."""
    last = page.stem.rsplit("-", 1)[-1]
    return int(last) if "-" in page.stem and last.isdigit() else 1


def index_data(page: Path) -> dict:
    """The index's rows (``index.js`` in the page's picture folder)."""
    text = (page.parent / f"{page.stem}_files" / "index.js").read_text()
    return json.loads(text.removeprefix("window.REPORT_INDEX = ").rstrip().removesuffix(";"))


def failed_pairs(rows: list[dict]) -> int:
    """Pairs with at least one mask not converged, from summary.json's rows."""
    return len({(r["image"], r["target"]) for r in rows if r.get("converged") is False})


def test_report_of_a_run_with_mask_evolution(csv_job):
    assert main(["report", str(csv_job)]) == 0
    page = csv_job / "report.html"
    text = page.read_text()
    for i in range(NUM_IMAGES):
        assert f'id="pair-shape{i}"' in text
    assert text.count('<section class="pair"') == NUM_IMAGES
    # per pair: the image and one overlay per area from the page's sheet, each linked to the
    # run's own full-size overlay figure (not copied)
    assert text.count('<span class="t') == NUM_IMAGES * (1 + len(AREAS))
    assert text.count('<a href="overlays/') == NUM_IMAGES * (1 + len(AREAS))
    assert text.count(".gif") == NUM_IMAGES  # the run's mask-evolution GIF, where it lies
    assert not list((csv_job / "report_files").glob("*.gif"))
    assert_files_exist(page)
    assert "method.jitter is on" in text  # the zig-zag explained (jitter is on by default)
    # Convergence: the count as summary.json has it, each unconverged mask listed and marked.
    convergence = json.loads((csv_job / "summary.json").read_text())["convergence"]
    done, total = convergence["converged"], convergence["masks"]
    assert f"masks converged: {done}/{total} " in text
    assert _listed_not_converged(text) == convergence["not_converged"]
    rows = json.loads((csv_job / "summary.json").read_text())["results"]
    assert text.count('<tr class="bad">') == failed_pairs(rows)  # a row per pair


def _listed_not_converged(text: str) -> list[str]:
    block = re.search(r'<ul class="not-converged">(.*?)</ul>', text, re.S)
    return re.findall(r"<li><a [^>]*>([^<]*)</a></li>", block.group(1)) if block else []


@pytest.mark.slow
def test_big_report_is_within_budget_and_complete(paged_report, big_run):
    summary = json.loads((big_run / "summary.json").read_text())
    pairs = len({(row["image"], row["target"]) for row in summary["results"]})
    assert pairs == BIG_IMAGES
    sections = []
    for page in paged_report[1:]:
        shown = page.read_text().count('<section class="pair"')
        sheet = big_run / "report_files" / f"thumbs-{page_number(page)}.jpg"
        size = page.stat().st_size + sheet.stat().st_size
        assert size <= PAIR_BYTES * shown, (page.name, size, shown)
    for page in paged_report:
        text = page.read_text()
        assert_files_exist(page)
        sections += re.findall(r'<section class="pair" data-pair="([^"]+)"', text)
    assert len(sections) == len(set(sections)) == BIG_IMAGES
    first = paged_report[0].read_text()
    # The summary counts what summary.json counts.
    convergence = summary["convergence"]
    assert f"{BIG_IMAGES} (image, target) pairs, {convergence['masks']} masks" in first
    assert f"masks converged: {convergence['converged']}/{convergence['masks']} " in first
    assert _listed_not_converged(first) == convergence["not_converged"][:LISTED_MASKS]
    table = first.split("<tbody>")[1].split("</tbody>")[0]
    assert table.count("<tr") == min(BIG_IMAGES, INDEX_ROWS)  # index: a row per pair
    assert len(index_data(paged_report[0])["rows"]) == BIG_IMAGES
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


# --------------------------------------------------------------------------- at scale


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory) -> Path:
    """The report of SIZE_PAIRS synthetic pairs of 64-px textured images (written straight
    in the store's format, nothing optimised): its first page."""
    run = build_run(tmp_path_factory.mktemp("synthetic") / "run", SIZE_PAIRS, size=64)
    return write_report(run)


def test_report_of_200_pairs_costs_under_10_kb_and_a_hundredth_of_a_file_per_pair(
    synthetic_report,
):
    """#26: 140 KB and 5 files a pair before (a copied GIF, a re-rendered strip, curves and
    full-size pictures per pair, thumbnails in the page). Now per page one thumbnail sheet;
    the full-size pictures are the run's own; the index's rows one script."""
    folder = synthetic_report.parent / "report_files"
    written = sorted(p.name for p in folder.iterdir())
    assert written == ["index.js", "thumbs-1.jpg", "thumbs-2.jpg", "written.json"]
    pages = sorted(synthetic_report.parent.glob("report*.html"))
    assert [p.name for p in pages] == ["report-2.html", "report.html"]
    beyond_first = [folder / name for name in written] + [pages[0]]
    files_per_pair = len(beyond_first) / SIZE_PAIRS
    bytes_per_pair = sum(p.stat().st_size for p in beyond_first) / SIZE_PAIRS
    assert files_per_pair <= 0.025 and bytes_per_pair <= PAIR_BYTES, bytes_per_pair
    second = pages[0].stat().st_size + (folder / "thumbs-2.jpg").stat().st_size
    assert second <= PAIR_BYTES * pages[0].read_text().count('<section class="pair"')
    for page in pages:
        assert_files_exist(page)


def test_not_converged_list_is_capped_and_quality_carries_the_unconverged_count(
    synthetic_report,
):
    text = synthetic_report.read_text()
    summary = json.loads((synthetic_report.parent / "summary.json").read_text())
    failed = summary["convergence"]["not_converged"]
    assert len(failed) > LISTED_MASKS
    assert _listed_not_converged(text) == failed[:LISTED_MASKS]
    assert f"… and {len(failed) - LISTED_MASKS} more: all {len(failed)} in " in text
    assert '<a href="summary.json">summary.json</a>' in text
    quality = summary["quality"]
    pairs = int(quality["pairs"])
    caveat = f"({len(failed)} of {summary['convergence']['masks']} masks not converged)"
    hits = round(quality["pointing"] * pairs)
    assert f"pointing {hits}/{pairs} hits (" in text
    assert f'at the largest area<span class="bad"> {caveat}</span>.' in text


def test_index_has_a_row_per_pair_with_each_areas_values_and_pointing(synthetic_report):
    """Per area its own achieved area and reward (not the largest area's IoU on every row);
    the pair's IoU (largest area) and pointing hit once."""
    index = index_data(synthetic_report)
    a, b = (f"{area:g}" for area in SYNTHETIC_AREAS)
    assert index["head"] == [
        "image", "target", f"achieved @{a}", f"reward @{a}", f"achieved @{b}", f"reward @{b}",
        f"IoU @{b}", "pointing", "converged",
    ]  # fmt: skip
    rows = json.loads((synthetic_report.parent / "summary.json").read_text())["results"]
    assert len(index["rows"]) == SIZE_PAIRS == len(rows) // 2
    pairs = zip(rows[::2], rows[1::2], strict=True)
    for cells, (small, large) in zip(index["rows"], pairs, strict=True):
        assert cells[:2] == [small["image"], small["target_name"]]
        expected = [number(small["achieved_area"]), number(small["reward"])]
        expected += [number(large["achieved_area"]), number(large["reward"])]
        expected += [number(large["iou"]), "hit" if large["pointing_hit"] else "miss"]
        assert cells[2:8] == expected
        failed = [f"{r['area']:g}" for r in (small, large) if not r["converged"]]
        assert cells[8] == ("no: " + ", ".join(failed) if failed else "yes")
    assert sum(index["bad"]) == failed_pairs(rows)
    text = synthetic_report.read_text()
    assert text.count('<tr class="bad">') == sum(index["bad"][:INDEX_ROWS])


def _axis(svg: str, plot: int) -> tuple[float, float]:
    """The (low, high) labels of plot ``plot`` of a pair's curves."""
    labels = re.findall(r'text-anchor="end">(-?[0-9.]+)</text>', svg)
    return float(labels[2 * plot + 1]), float(labels[2 * plot])


def test_pair_curves_show_the_data_range_and_mark_the_requested_area():
    """The achieved-area plot spans its values and the requested area, not 0–1 (where a mask
    settling from 0.21 to 0.2 looks flat)."""
    steps = np.arange(50)
    achieved = np.stack([0.2 + 0.01 * np.exp(-steps / 10)])
    reward = np.stack([0.5 + 0.1 * (1 - np.exp(-steps / 10))])
    svg = curves_svg(reward, achieved, [0.2], jitter=False)
    low, high = _axis(svg, 1)
    assert 0.19 <= low <= 0.2 and 0.21 <= high <= 0.22
    assert _axis(svg, 0)[0] >= 0.49 and _axis(svg, 0)[1] <= 0.61
    dashed = re.findall(r'<line x1="616" x2="1016" y1="(\d+)" y2="\1"[^>]*dasharray', svg)
    assert len(dashed) == 1 and 34 < int(dashed[0]) < 34 + 170  # inside the plot's box
    points = re.findall(r'<polyline points="([^"]+)"', svg)
    assert len(points) == 2 and len(points[1].split()) == 50  # every step: 50 ≤ CURVE_POINTS


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


def _sheet_loaded(tab) -> bool:
    """Whether the page's thumbnail sheet (the background of its ``.t`` spans) decodes."""
    return tab.evaluate(
        """async () => {
            const span = document.querySelector("span.t");
            const url = getComputedStyle(span).backgroundImage.slice(5, -2);
            const img = new Image();
            img.src = url;
            return img.decode().then(() => img.naturalWidth > 0, () => false);
        }"""
    )


def _column(tab, col: int) -> list[str]:
    return tab.eval_on_selector_all(
        "table.pairs tbody tr", f"rows => rows.map(r => r.cells[{col}].textContent)"
    )


@pytest.mark.slow
def test_report_in_a_browser_loads_every_image_and_sorts(browser, paged_report):
    tab = browser.new_page()
    for page in paged_report[:2]:
        tab.goto(page.resolve().as_uri())
        assert tab.locator("span.t").count() == 3 * PER_PAGE  # image + 2 areas a pair
        assert _sheet_loaded(tab), page.name
        assert _images_loaded(tab) == [], page.name
    tab.goto(paged_report[0].resolve().as_uri())
    reward = 3  # image, target, achieved @a, reward @a, …
    tab.click(f"table.pairs th:nth-child({reward + 1})")
    values = [float(v) for v in _column(tab, reward)]
    assert values == sorted(values) and len(values) == BIG_IMAGES
    tab.click(f"table.pairs th:nth-child({reward + 1})")
    assert [float(v) for v in _column(tab, reward)] == sorted(values, reverse=True)
    wanted = _column(tab, 0)[0]
    tab.fill("#index-filter", wanted)
    images = _column(tab, 0)
    assert images and all(wanted in v for v in images) and len(images) < BIG_IMAGES
    assert tab.inner_text("#index-range") == f"1–{len(images)} of {len(images)}"
    tab.close()


@pytest.mark.slow
def test_report_of_1000_pairs_loads_in_a_browser_and_pages_its_index(
    browser, tmp_path_factory, capsys
):
    """A 1,000-pair report opens with the first page's rows; the pager, the sort and the
    "only not converged" box work over all 1,000 (from index.js). The load time is printed
    (measured, not asserted: the machine is shared)."""
    run = build_run(tmp_path_factory.mktemp("browser") / "run", BROWSER_PAIRS, chunk=250)
    first = write_report(run)
    index = index_data(first)
    tab = browser.new_page()
    start = time.perf_counter()
    tab.goto(first.resolve().as_uri(), wait_until="load")
    seconds = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n{BROWSER_PAIRS}-pair report: first page loaded in {seconds:.2f} s")
    shown = _column(tab, 0)
    assert shown == [row[0] for row in index["rows"][:INDEX_ROWS]]
    assert tab.inner_text("#index-range") == f"1–{INDEX_ROWS} of {BROWSER_PAIRS}"
    assert tab.locator("section.pair").count() == 100 and _sheet_loaded(tab)
    tab.click("#index-next")
    assert _column(tab, 0) == [row[0] for row in index["rows"][INDEX_ROWS : 2 * INDEX_ROWS]]
    assert tab.inner_text("#index-range") == f"{INDEX_ROWS + 1}–{2 * INDEX_ROWS} of 1000"
    href = tab.eval_on_selector("table.pairs tbody a", "a => a.getAttribute('href')")
    assert href == f"report-2.html#pair-{index['rows'][INDEX_ROWS][0]}"
    tab.click("#index-prev")
    assert _column(tab, 0)[0] == index["rows"][0][0]
    tab.check("#index-bad")
    failed = sum(index["bad"])
    assert tab.inner_text("#index-range") == f"1–{min(failed, INDEX_ROWS)} of {failed}"
    assert tab.locator("table.pairs tbody tr.bad").count() == min(failed, INDEX_ROWS)
    tab.uncheck("#index-bad")
    tab.click("table.pairs th:nth-child(4)")  # reward @ the first area, ascending
    rewards = [float(row[3]) for row in index["rows"]]
    assert [float(v) for v in _column(tab, 3)] == sorted(rewards)[:INDEX_ROWS]
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


def test_the_area_curve_section_prints_grid_bounds_as_bounds(tmp_path):
    """An area found at the grid's smallest area is a bound (``≤ 0.01``), one never reached is
    ``> 0.5``, one found between grid areas its value; the median across pairs likewise."""
    from lightning_extremal.jobs.report.analysis_sections import area_curve_section
    from lightning_extremal.jobs.report.assets import AssetFolder

    pair = {"image": "a", "target_name": "cat", "full_score": 0.9, "figure": "none.png"}
    result = {
        "areas": [0.01, 0.1, 0.5],
        "pairs": [
            {**pair, "sufficient_area": 0.2, "sufficient_bound": None},
            {**pair, "sufficient_area": None, "sufficient_bound": "lower"},
        ],
        "summary": {
            "area_curve/necessary_area/median": 0.01,
            "area_curve/necessary_area/reached": 2,
            "area_curve/pairs": 2,
        },
        "bounds": {"necessary_area": {"median": "upper"}},
    }
    for p, bound in zip(result["pairs"], ("upper", None), strict=True):
        p.update(necessary_area=0.01 if bound else 0.05, necessary_bound=bound)
    html = area_curve_section(tmp_path, result, AssetFolder(tmp_path / "report_files"))
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", html)
    assert cells[3:5] == ["0.200", "≤ 0.01"] and cells[8:10] == ["&gt; 0.5", "0.050"]
    assert "necessary area: median ≤ 0.01, reached by 2 of 2 pairs" in html
