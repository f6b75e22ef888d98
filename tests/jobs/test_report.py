"""The HTML report of a finished run (jobs/report)."""

from __future__ import annotations

import json

from lightning_extremal.cli import main
from tests.helpers import AREAS, NUM_IMAGES


def test_report_is_one_html_page_with_every_image(csv_job):
    assert main(["report", str(csv_job)]) == 0
    page = (csv_job / "report.html").read_text()
    assert 'src="http' not in page and 'src="/' not in page  # self-contained
    for i in range(NUM_IMAGES):
        assert f'id="pair-shape{i}"' in page
    assert page.count('<section class="pair"') == NUM_IMAGES
    # per pair: the image, one overlay per area, the evolution strip and GIF, the curves
    assert page.count("<img ") == NUM_IMAGES * (1 + len(AREAS) + 2 + 1)
    assert page.count('src="data:image/gif;base64,') == NUM_IMAGES
    # Convergence: the count as summary.json has it, and each unconverged mask marked in red.
    convergence = json.loads((csv_job / "summary.json").read_text())["convergence"]
    done, total = convergence["converged"], convergence["masks"]
    assert f"masks converged: {done}/{total} " in page
    assert page.count(" not converged</td>") == total - done
    assert page.count("<th>reward (achieved area) @ ") == len(AREAS)


def test_report_errors_name_the_problem(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no run directory" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2
    assert "chunks" in capsys.readouterr().err
