"""`sample.py task=explore`: a local web page on a snapshot, its images made by the compiled generator.

images.py makes what the page shows as sample.py makes it; app.py is the web app (Starlette, the `explore`
extra); serve.py binds, prints the URL and serves; page/ is the page (plain HTML and JavaScript)."""

from stylegan_exp.sample.explore.serve import check_installed, explore

__all__ = ["check_installed", "explore"]
