"""Notebooks a reader can download and open anywhere, Colab included.

When the HTML build finishes:

* every workshop notebook (``notebooks/*.md``, MyST markdown) is written as
  ``_notebooks/<name>.ipynb`` in the HTML output, without outputs;
* the chapter notebooks myst-nb writes to ``_sources/<page>.ipynb`` (the
  page's "download .ipynb" button) are kept as they are;

and each of them gets a first cell that, only when it runs on Google Colab,
clones the repository (``repository.url`` of ``_config.yml``, the one place
the URL is written), installs thpviz and Graphviz, and moves to the folder
the notebook expects.  Elsewhere that cell does nothing.  The book itself
has no Colab launch button: Colab opens notebooks from GitHub only, and the
repository holds MyST markdown, not ``.ipynb``.
"""

from __future__ import annotations

from pathlib import Path

MARK = "thpviz-colab-setup"

_SETUP = '''# Google Colab only: fetch thpviz and its data, then work in the {folder} folder.
# (Elsewhere this cell does nothing.)
import os, shutil, subprocess, sys
if "google.colab" in sys.modules:
    if not os.path.isdir("/content/thpviz"):
        subprocess.run(["git", "clone", "--depth=1", "{url}", "/content/thpviz"], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/thpviz[viz]", "pyyaml"], check=True)
    if shutil.which("dot") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "graphviz"], check=True)
    sys.path[:0] = ["/content/thpviz", "/content/thpviz/book"]
    os.chdir("/content/thpviz/{folder}")
    from google.colab import output
    output.enable_custom_widget_manager()
'''


def setup_cell(url: str, folder: str):
    import nbformat

    cell = nbformat.v4.new_code_cell(_SETUP.format(url=url, folder=folder))
    cell.metadata["tags"] = [MARK, "remove-cell"]
    return cell


def with_setup(nb, url: str, folder: str):
    """``nb`` with the Colab cell first (once)."""
    if not any(MARK in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        nb.cells.insert(0, setup_cell(url, folder))
    return nb


def _write(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import jupytext
    import nbformat

    url = (app.config.html_theme_options or {}).get("repository_url", "").rstrip("/")
    if not url:
        return
    out = Path(app.outdir)
    root = Path(app.srcdir).parent
    target = out / "_notebooks"
    target.mkdir(exist_ok=True)
    for md in sorted((root / "notebooks").glob("*.md")):
        if md.name.lower() == "readme.md":
            continue
        nb = with_setup(jupytext.read(md), url, "notebooks")
        nbformat.write(nb, target / f"{md.stem}.ipynb")
    for ipynb in sorted((out / "_sources").glob("*.ipynb")):
        nb = nbformat.read(ipynb, as_version=4)
        nbformat.write(with_setup(nb, url, "book"), ipynb)


def setup(app):
    app.connect("build-finished", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
