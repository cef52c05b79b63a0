"""The documentation site covers the public API: every public name of the package has
an API entry (a ``::: ferroptim.X`` directive, or its module's) on some page of docs/,
and every page is in mkdocs.yml's nav. ``mkdocs build --strict`` (scripts/test.sh)
then checks that each entry resolves and that no link is broken."""

import importlib
import re
import types
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(not DOCS.is_dir(), reason="docs/ is not beside the tests")


def documented():
    names = set()
    for page in DOCS.glob("*.md"):
        names.update(re.findall(r"^::: ([\w.]+)", page.read_text(), re.M))
    return names


def covered(qualname, names):
    parts = qualname.split(".")
    return any(".".join(parts[:k]) in names for k in range(2, len(parts) + 1))


def public(module_name, all_names):
    return [f"{module_name}.{n}" for n in all_names if not n.startswith("_") and not n.isupper()]


@pytest.mark.parametrize(
    "module_name",
    ["ferroptim", "ferroptim.lr_scheduler", "ferroptim.swa_utils", "ferroptim.utils",
     "ferroptim.functional", "ferroptim.interop", "ferroptim.tree"],
)
def test_every_public_name_has_an_api_entry(module_name):
    module = importlib.import_module(module_name)
    names = documented()
    # constants have no entry; a submodule the package re-exports is checked by its own case
    skip = {"ferroptim.__version__", "ferroptim.required"}
    missing = [
        q for q in public(module_name, module.__all__)
        if q not in skip
        and not isinstance(getattr(module, q.rsplit(".", 1)[1]), types.ModuleType)
        and not covered(q, names)
    ]
    assert not missing, f"no API entry in docs/ for {missing}"


def test_the_distributed_api_has_entries():
    names = documented()
    for n in ["broadcast_parameters", "allreduce_gradients", "DistributedOptimizer",
              "ZeroRedundancyOptimizer"]:
        assert covered(f"ferroptim.distributed.{n}", names), n


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert pages
    assert [p for p in pages if p not in nav] == []
