"""Eval suites in the config: every problem is named by its path (and a file's line), and a
reload with a bad suite keeps the previous configuration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmmon.config.settings import check_settings
from llmmon.daemon.history import render

ENDPOINT = {"name": "e", "provider": "openai", "url": "http://127.0.0.1:9/v1", "model": "m"}


def _problems(write_config: Callable[[dict[str, object]], Path], suite: dict[str, Any]
              ) -> list[str]:
    path = write_config({"endpoints": [ENDPOINT], "evals": [suite]})
    settings, problems, _ = check_settings(path)
    assert (settings is None) == bool(problems)
    return problems


@pytest.mark.parametrize(("suite", "expected"), [
    ({"name": "s"}, "give exactly one of builtin, file, items"),
    ({"name": "s", "builtin": "sanity", "items": [{"input": "x", "reference": "y"}]},
     "give exactly one of builtin, file, items"),
    ({"name": "s", "builtin": "nope"}, "evals[0] (s).builtin"),
    ({"name": "s", "items": [{"input": "x"}]}, "give reference (with a scorer) or expect"),
    ({"name": "s", "items": [{"input": "x", "reference": "y", "expect": {"contains": "y"}}]},
     "reference or expect, not both"),
    ({"name": "s", "items": [{"reference": "y", "scorer": "f1"}]}, "input is required"),
    ({"name": "s", "items": [{"input": "x", "reference": "y"}], "sample": 0},
     "evals[0] (s).sample"),
    ({"name": "s", "items": [{"input": "x", "reference": "y"}], "every": "soon"},
     "evals[0] (s).every"),
    ({"name": "s", "items": [{"input": "x", "reference": "y"}], "endpoints": ["other"]},
     "no endpoint named other"),
])
def test_a_bad_suite_is_refused_by_name(write_config: Callable[[dict[str, object]], Path],
                                        suite: dict[str, Any], expected: str) -> None:
    problems = _problems(write_config, suite)
    assert any(expected in p for p in problems), problems


def test_a_bad_line_in_a_suite_file_is_named(tmp_path: Path,
                                             write_config: Callable[[dict[str, object]], Path]
                                             ) -> None:
    good = '{"input": "What is 2 + 3?", "reference": "5", "scorer": "number"}'
    jsonl = tmp_path / "suite.jsonl"
    jsonl.write_text(f"{good}\n\n{good}\n{{\"input\": \"x\"}}\n")
    problems = _problems(write_config, {"name": "s", "file": str(jsonl)})
    assert any("suite.jsonl line 4" in p for p in problems), problems
    jsonl.write_text(f"{good}\nnot json\n")
    assert any("line 2: not a JSON object" in p
               for p in _problems(write_config, {"name": "s", "file": str(jsonl)}))
    csv = tmp_path / "suite.csv"
    csv.write_text("input,reference,scorer,tolerance\nWhat is 1 + 1?,2,number,x\n")
    assert any("tolerance is not a number" in p
               for p in _problems(write_config, {"name": "s", "file": str(csv)}))
    csv.write_text("question,answer\nx,y\n")
    assert any("unknown CSV columns: answer, question" in p
               for p in _problems(write_config, {"name": "s", "file": str(csv)}))


def test_suite_files_in_both_formats_load(tmp_path: Path,
                                          write_config: Callable[[dict[str, object]], Path]
                                          ) -> None:
    csv = tmp_path / "suite.csv"
    csv.write_text('id,input,reference,scorer,tolerance\nq1,"What is 1 + 1?",2,number,0.5\n'
                   'q2,Capital of France?,Paris,contains,\n')
    path = write_config({"endpoints": [ENDPOINT],
                         "evals": [{"name": "s", "file": str(csv), "scorer": "f1"}]})
    settings, problems, _ = check_settings(path)
    assert problems == []
    assert settings is not None
    items = settings.evals[0].loaded_items()
    assert [(i.id, i.scorer, i.tolerance) for i in items] == [("q1", "number", 0.5),
                                                            ("q2", "contains", 0.0)]
    assert settings.evals[0].covers("e")


def test_the_probes_page_shows_the_last_run_item_by_item() -> None:
    run = {"finished_unix": 0.0, "outcome": "partial", "scores": {"f1": 0.5},
           "items": [{"index": 3, "scorer": "f1", "value": 0.5, "passed": True, "error": None,
                      "detail": None, "answer": "Paris"},
                     {"index": 4, "scorer": "f1", "value": None, "passed": None,
                      "error": "timeout", "detail": "no response within 5 s", "answer": ""}]}
    text = render("e", [], False, {"sanity": run})
    assert "== eval sanity  1970-01-01T00:00:00+00:00  partial  f1=0.5000" in text
    assert '[3] f1 0.5000 pass  answer: "Paris"' in text
    assert "[4] f1 - error  timeout: no response within 5 s" in text
