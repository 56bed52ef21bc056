"""The README is a front door and the user guide's links hold: every relative link and anchor of
``README.md`` and ``docs/*.md`` resolves, the README stays short, its example runs, and neither
names a private module."""

import os
import re
import unicodedata

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
README = os.path.join(ROOT, "README.md")
PAGES = [README] + sorted(os.path.join(DOCS, f) for f in os.listdir(DOCS) if f.endswith(".md"))

FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target); the text may span lines (the screenshot's alt text does)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def _prose(text):
    """The text without fenced code blocks and inline code (links there are not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading):
    """The anchor GitHub (and MyST's ``myst_heading_anchors``) gives a heading: lower case,
    markup and punctuation dropped except ``-`` and ``_``, spaces turned into ``-``."""
    text = re.sub(r"[`*]|<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    kept = "".join(c for c in text if c in "-_ " or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(path):
    """The heading anchors of a Markdown file (GitHub numbers repeated ones: x, x-1, ...)."""
    seen, found = {}, set()
    for _, title in HEADING.findall(FENCE.sub("", open(path, encoding="utf-8").read())):
        base = slug(title)
        n = seen.get(base, 0)
        found.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return found


def links(path):
    """The relative link targets of a Markdown file (web and mail addresses left out)."""
    text = _prose(open(path, encoding="utf-8").read())
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def _inside(path, folder):
    return os.path.commonpath([os.path.abspath(path), folder]) == folder


def broken_links(path):
    """``target: reason`` for each relative link of ``path`` that does not resolve."""
    broken = []
    for target in links(path):
        file_part, _, fragment = target.partition("#")
        dest = (os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                if file_part else path)
        if not os.path.exists(dest):
            broken.append(f"{target}: no such file")
        elif (_inside(path, DOCS) and not _inside(dest, DOCS)
              and (dest.endswith(".md") or os.path.isdir(dest))):
            # Sphinx resolves a Markdown link as a page of the site: outside docs/ it fails the
            # -W build (myst.xref_missing); such paths are written as code in the pages
            broken.append(f"{target}: a page of the site cannot link outside docs/; write the "
                          "path as code")
        elif fragment:
            if not dest.endswith(".md"):
                broken.append(f"{target}: an anchor into a file that is not Markdown")
            elif fragment not in anchors(dest):
                broken.append(f"{target}: no heading with the anchor #{fragment}")
    return broken


def test_the_readme_is_at_most_200_lines():
    n = len(open(README, encoding="utf-8").read().splitlines())
    assert n <= 200, f"README.md has {n} lines; the rest belongs in docs/"


@pytest.mark.parametrize("path", PAGES, ids=[os.path.relpath(p, ROOT) for p in PAGES])
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_link_check_finds_broken_links(tmp_path):
    # the checker itself: a missing file, a missing anchor and an anchor into a PNG are caught;
    # links in code, web addresses and good anchors are not
    (tmp_path / "other.md").write_text("# Other page\n\n## WAAL: the training-length finding\n")
    (tmp_path / "p.png").write_bytes(b"")
    global DOCS
    saved, DOCS = DOCS, str(tmp_path / "docs")
    os.mkdir(DOCS)
    (tmp_path / "docs" / "inner.md").write_text("[out](../other.md) [img](../p.png)\n")
    try:
        assert broken_links(os.path.join(DOCS, "inner.md")) == [
            "../other.md: a page of the site cannot link outside docs/; write the path as code"]
    finally:
        DOCS = saved
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n\n[ok](other.md#waal-the-training-length-finding) [self](#top) "
        "[web](https://example.org/x.md) `[code](missing.md)`\n"
        "```\n[fenced](missing.md)\n```\n"
        "[gone](missing.md) [no anchor](other.md#nope) [png](p.png#x) ![alt\ntext](p.png)\n"
    )
    assert broken_links(str(page)) == [
        "missing.md: no such file",
        "other.md#nope: no heading with the anchor #nope",
        "p.png#x: an anchor into a file that is not Markdown",
    ]


def test_the_readme_links_into_the_user_guide():
    targets = {t.partition("#")[0] for t in links(README)}
    for page in ("docs/quickstart.md", "docs/usage.md", "docs/data.md", "docs/strategies.md",
                 "docs/experiments.md", "docs/labeling_quickstart.md", "docs/scaling.md",
                 "docs/reproductions.md", "docs/bgadl_ablation.md", "docs/design.md",
                 "docs/images/label_page.png"):
        assert page in targets, page


def test_the_readme_keeps_the_two_commands():
    text = open(README, encoding="utf-8").read()
    assert "bash scripts/main.sh" in text and "bash scripts/test.sh" in text


def test_no_page_names_a_private_module():
    # a private module is an implementation detail: the pages point at public paths
    pages = PAGES + sorted(os.path.join(DOCS, f) for f in os.listdir(DOCS) if f.endswith(".rst"))
    offenders = []
    for path in pages:
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if re.search(r"\bskal[./]_[a-z]", line):
                offenders.append(f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def _readme_example():
    text = open(README, encoding="utf-8").read()
    section = text.split("## An example", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_example_runs(capsys):
    code = _readme_example()
    assert len(code.splitlines()) <= 20
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in printed] == ["70", "90", "110"]
    accuracy = float(printed[-1].split()[-1])
    assert 0.2 < accuracy <= 1.0  # 10 digit classes: chance is 0.1
