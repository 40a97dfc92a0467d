"""Where a result came from: the commit of a checkout, and of a copy without git's folder."""

from __future__ import annotations

import pytest

from robinterp import provenance


@pytest.fixture
def outside_git(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "project_root", lambda: tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # git must not find a repository above
    provenance.git_commit.cache_clear()
    yield
    provenance.git_commit.cache_clear()


def test_a_checkout_names_its_commit():
    provenance.git_commit.cache_clear()
    commit = provenance.git_commit()
    assert len(commit.removesuffix("-dirty")) == 12 and int(commit[:12], 16) >= 0


def test_a_copy_without_git_takes_the_commit_its_maker_names(outside_git, monkeypatch):
    monkeypatch.delenv(provenance.COMMIT_ENV, raising=False)
    assert provenance.git_commit() == "unknown"
    provenance.git_commit.cache_clear()
    monkeypatch.setenv(provenance.COMMIT_ENV, "9ace558abcde")
    assert provenance.git_commit() == "9ace558abcde"


CPUINFO = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16
"""


def test_the_cpu_is_named_with_its_native_bfloat16_instructions(tmp_path):
    (tmp_path / "sapphire").write_text(CPUINFO)
    (tmp_path / "emulated").write_text(CPUINFO.replace(" avx512_bf16 amx_tile amx_bf16", ""))
    named = provenance.cpu_model(tmp_path / "sapphire")
    assert named == "Intel(R) Xeon(R) Platinum 8480+; bfloat16: amx_bf16, avx512_bf16"
    assert provenance.cpu_model(tmp_path / "emulated") == "Intel(R) Xeon(R) Platinum 8480+; no native bfloat16"
    assert provenance.cpu_model(tmp_path / "absent") == provenance.platform.machine()
