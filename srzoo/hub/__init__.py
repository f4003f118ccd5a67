"""hub: model files and where they come from.

Manifests (:mod:`.manifest`: the schema of one entry, the parser of one file)
merged into one lookup (:mod:`.registry`); the verified cache (:mod:`.cache`);
downloads with mirrors, resume and fault handling (:mod:`.download`); archive
members (:mod:`.archive`); the OpenModelDB catalogue (:mod:`.catalog`); and
the friendly functions over them (:mod:`.api`: ``list_models``, ``get_model``,
``fetch``...).

May import: :mod:`srzoo.config`, :mod:`srzoo.errors`. Nothing here converts
or runs a model: :func:`.api.fetch` returns the file as published.
"""
