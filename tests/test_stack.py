"""The import guard names the versions found and needed, instead of DGL's cryptic errors."""

from __future__ import annotations

import pytest

from roam_graph._stack import check_stack, stack_problems

GOOD = {"torch": "2.2.1+cu121", "torchdata": "0.7.1", "numpy": "1.26.4", "dgl": "2.1.0"}


def test_the_verified_stack_passes() -> None:
    assert stack_problems(GOOD.get) == []


def test_a_newer_torch_is_named_with_the_version_needed() -> None:
    versions = dict(GOOD, torch="2.5.0")
    with pytest.raises(ImportError, match=r"torch: found 2\.5\.0, need >=2\.0\.0,<2\.2\.2"):
        check_stack(versions.get)


def test_numpy_2_and_new_torchdata_are_both_reported() -> None:
    versions = dict(GOOD, numpy="2.1.0", torchdata="0.10.1")
    problems = stack_problems(versions.get)
    assert any("numpy: found 2.1.0" in p for p in problems)
    assert any("torchdata: found 0.10.1" in p for p in problems)


def test_a_missing_package_is_reported() -> None:
    versions = {k: v for k, v in GOOD.items() if k != "dgl"}
    assert stack_problems(versions.get) == ["dgl: not installed (need dgl==2.1.0)"]


def test_the_installed_stack_is_supported() -> None:
    assert stack_problems() == []
