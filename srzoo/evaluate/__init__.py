"""evaluate: how good and how fast.

Image-quality metrics under the literature's protocol (:mod:`.metrics`), the
benchmark harness (:mod:`.benchmark`: protocols, runner, report) and
side-by-side galleries (:mod:`.compare`).

May import: :mod:`srzoo.runtime` and everything below it; not
:mod:`srzoo.jobs` or :mod:`srzoo.train` (siblings), not :mod:`srzoo.cli`.
"""
