"""hub: model files and where they come from.

Manifests (:mod:`.manifest`: the schema of one entry, the parser of one file)
merged into one lookup (:mod:`.registry`); the verified cache (:mod:`.cache`);
downloads with mirrors, resume and fault handling (:mod:`.download`, which
orders the sources; :mod:`.mirror`, local mirror folders searched by
file name; :mod:`.transfer`, one source's bytes; :mod:`.partial`, the
resumable partial files); links of file hosts made fetchable (:mod:`.hosts`);
the limits every reader of a hostile file applies (:mod:`.untrusted`); archive
members (:mod:`.archive`); the OpenModelDB catalogue (:mod:`.catalog`); and
the friendly functions over them (:mod:`.api`: ``list_models``, ``get_model``,
``fetch``...).

May import: the base modules (:mod:`srzoo.config`, :mod:`srzoo.errors`,
:mod:`srzoo.fsutil`, :mod:`srzoo.resample`). Nothing here converts
or runs a model: :func:`.api.fetch` returns the file as published.
"""
