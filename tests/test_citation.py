"""CITATION.cff is a valid Citation File Format 1.2.0 file (its required keys and types, no key the
format does not define) and agrees with the package's version and the book's "cite this book"."""

from __future__ import annotations

import datetime
import re

import yaml

from robinterp import __version__
from tests.conftest import REPO

# the top-level keys of CFF 1.2.0 (https://github.com/citation-file-format/citation-file-format)
CFF_KEYS = {
    "abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi", "identifiers",
    "keywords", "license", "license-url", "message", "preferred-citation", "references", "repository",
    "repository-artifact", "repository-code", "title", "type", "url", "version",
}  # fmt: skip
REQUIRED = {"cff-version", "message", "title", "authors"}


def test_the_citation_file_is_cff_1_2_0_and_names_this_version():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert REQUIRED <= set(cff) and set(cff) <= CFF_KEYS, set(cff) ^ CFF_KEYS
    assert cff["cff-version"] == "1.2.0" and cff["type"] in {"software", "dataset"}
    assert all(isinstance(cff[key], str) and cff[key].strip() for key in ("message", "title", "abstract"))
    assert cff["authors"] and all(
        isinstance(a, dict) and (a.get("name") or a.get("family-names")) for a in cff["authors"]
    )
    assert str(cff["version"]) == __version__
    assert isinstance(cff["date-released"], datetime.date)
    assert all(isinstance(k, str) for k in cff["keywords"])


def test_the_books_bibtex_entry_agrees_with_the_citation_file():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    (entry,) = re.findall(r"```bibtex\n(.*?)```", (REPO / "book" / "intro.md").read_text(), re.S)
    fields = dict(re.findall(r"^\s*(\w+) = \{+(.*?)\}+,?$", entry, re.M))
    assert fields["title"] == cff["title"] and fields["version"] == str(cff["version"])
    assert fields["year"] == str(cff["date-released"].year)
