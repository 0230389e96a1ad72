"""Every traced function is made by `graph_function` (no AutoGraph): a plain `tf.function` would convert each
network and augmentation function it reaches, ~10 s more for every process that trains, samples or exports."""

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stylegan_exp"
TF_FUNCTION = re.compile(r"\btf\.function\s*\(|@tf\.function\b")


def test_only_graph_function_makes_a_tf_function():
    found = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
             for line in path.read_text().splitlines()
             if TF_FUNCTION.search(line.split("#")[0]) and not line.lstrip().startswith(('"', "`"))]
    assert found == ["nets/compiled.py"], found  # graph_function itself
