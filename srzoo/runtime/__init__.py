"""runtime: running one model on one engine.

Engines (:mod:`.engines`: one module per engine, registered by name, asked
about their targets and capabilities through the :class:`~.engines.base.Engine`
protocol); backend names and their resolution, engine-neutral
(:mod:`.backends`); measured backend choice (:mod:`.autotune`); reduced
precision measured against fp32 before use (:mod:`.precision`); the pre- and
post-processing every engine shares, tiling and the memory budget included
(:mod:`.pipeline`);
image files (:mod:`.imageio`); and :class:`~.upscaler.Upscaler`, one model
loaded once and run at its own scales.

May import: :mod:`srzoo.convert` (a format an engine does not load runs from
the ONNX it derives), :mod:`srzoo.hub`, and the base modules.
"""
