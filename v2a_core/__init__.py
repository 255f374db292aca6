"""The built-in video-to-audio generator and the generator plug-in system.

Stages (one-way data flow, a typed record between each; see ``v2a_core.types``):
``video`` (decode) -> ``analysis`` -> ``plan`` -> ``render``; ``pipeline.generate`` then
marks, signs and stores every output through :func:`provenance.mark.mark`.
"""
