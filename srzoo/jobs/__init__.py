"""jobs: work built on :class:`~srzoo.runtime.upscaler.Upscaler`.

Any factor or target size (:mod:`.resize`), the one-call ``upscale()`` and
``upscale_files()`` (:mod:`.upscaling`), many files with executors and Dask
(:mod:`.batch`, :mod:`.executors`, :mod:`.files`), images larger than memory
(:mod:`.bigimage`) and video (:mod:`.video`).

May import: :mod:`srzoo.runtime` and everything below it; not
:mod:`srzoo.evaluate` or :mod:`srzoo.train` (siblings), not :mod:`srzoo.cli`.
"""
