"""The manifest FoleySeal signs: actions (AI disclosure), soft binding, generation record, ingredients.

Assertions (all in the active manifest):

* ``c2pa.actions`` (v2):

  - generated audio: ``c2pa.created`` with digital source type ``trainedAlgorithmicMedia``;
  - someone else's file (``mark`` without ``generated``): ``c2pa.opened`` of the input (a
    ``parentOf`` ingredient, so an input that had credentials keeps its history), then
    ``c2pa.edited`` (the watermark changes the audio);
  - then ``c2pa.watermarked.bound`` when a soft binding is present (c2pa accepts this action
    only together with a ``c2pa.soft-binding`` assertion);
  - each action carries the software agent ``FoleySeal <version>``.

* ``c2pa.soft-binding``: ``alg`` = ``org.foleyseal.audio-wm.1``, one block per marked time
  span, ``scope.timespan`` in integer milliseconds, ``value`` = the 64-bit payload in hex.

* ``org.foleyseal.generation``: the generation record (generator name and version, prompt and
  negative prompt unless left out, seed, parameters, SHA-256 of the source video), plus the
  watermark key id and the FoleySeal version.

The source video, when there is one, is an ``inputTo`` ingredient (a Create intent forbids a
parent). c2pa records no hash of an unsigned ingredient, so its SHA-256 is also in the
generation record.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provenance import __version__
from provenance.core.c2pa_types import SoftBinding
from provenance.core.errors import InputError
from provenance.core.text import valid_unicode

GENERATION_LABEL = "org.foleyseal.generation"
SOFTWARE_AGENT = {"name": "FoleySeal", "version": __version__}
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PROMPT_KEYS = ("prompt", "negative_prompt")


def _is_prompt_key(key: object) -> bool:
    """A key that names a prompt in any spelling: ``prompt``, ``negative_prompt``,
    ``negativePrompt``, ``text_prompt``, ``prompts``..."""
    return isinstance(key, str) and "prompt" in key.lower()


def _without_prompts(value: Any) -> Any:
    """``value`` with every prompt key removed, at any depth (another generator's record names
    them its own way, inside lists or settings: ``--no-prompts`` must remove them all)."""
    if isinstance(value, dict):
        return {k: _without_prompts(v) for k, v in value.items() if not _is_prompt_key(k)}
    if isinstance(value, list):
        return [_without_prompts(v) for v in value]
    return value


def new_manifest_label() -> str:
    """A fresh C2PA manifest label, ``urn:c2pa:<uuid4>`` (c2pa refuses other forms)."""
    return f"urn:c2pa:{uuid.uuid4()}"


@dataclass(frozen=True)
class Ingredient:
    """A file referenced by the manifest."""

    path: Path
    mime_type: str
    relationship: str
    """``parentOf`` (the asset this one was edited from) or ``inputTo`` (e.g. the source video)."""
    title: str | None = None
    label: str = field(default_factory=lambda: f"ingredient-{uuid.uuid4().hex[:8]}")

    def definition(self) -> dict[str, Any]:
        return valid_unicode({"title": self.title or self.path.name, "relationship": self.relationship, "label": self.label})


@dataclass(frozen=True)
class ManifestSpec:
    """What to say in a manifest. :func:`build_definition` turns it into c2pa's JSON definition."""

    mime_type: str
    title: str | None = None
    generated: bool = True
    """True: the audio is AI-generated (``c2pa.created`` + trainedAlgorithmicMedia). False: an
    existing file was opened and edited (needs ``parent``)."""
    soft_binding: SoftBinding | None = None
    generation_record: dict[str, Any] | None = None
    """Already normalised by :func:`generation_assertion`."""
    parent: Ingredient | None = None
    inputs: tuple[Ingredient, ...] = ()
    label: str = field(default_factory=new_manifest_label)

    def ingredients(self) -> list[Ingredient]:
        return ([self.parent] if self.parent else []) + list(self.inputs)


def soft_binding_assertion(sb: SoftBinding) -> dict[str, Any]:
    """The ``c2pa.soft-binding`` assertion; times become integer milliseconds."""
    blocks = []
    for b in sb.blocks:
        start_ms = max(0, int(round(b.start_s * 1000)))
        end_ms = max(start_ms, int(round(b.end_s * 1000)))
        blocks.append({"scope": {"timespan": {"start": start_ms, "end": end_ms}}, "value": b.value})
    return {"alg": sb.alg, "blocks": blocks, "pad": []}


def generation_assertion(
    record: dict[str, Any] | None,
    *,
    include_prompts: bool = True,
    source_video_sha256: str | None = None,
    operation: str = "generate",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Normalise a generation record into the ``org.foleyseal.generation`` assertion data.

    Expected keys (all optional): ``generator`` (name, or ``{"name", "version"}``),
    ``generator_version``, ``prompt``, ``negative_prompt``, ``seed``, ``parameters`` (dict),
    ``source_video_sha256``. Other JSON values are kept as given. With
    ``include_prompts=False`` every key naming a prompt (in any spelling, at any depth) is
    removed and ``prompts_included`` is false.
    """
    data: dict[str, Any] = dict(record or {})
    gen = data.get("generator")
    if isinstance(gen, str):
        data["generator"] = {"name": gen, "version": data.pop("generator_version", None)}
    if not include_prompts:
        data = _without_prompts(data)
    data["prompts_included"] = bool(include_prompts and any(k in data for k in PROMPT_KEYS))
    if source_video_sha256 and not data.get("source_video_sha256"):
        data["source_video_sha256"] = source_video_sha256
    data.setdefault("operation", operation)
    data["foleyseal_version"] = __version__
    if extra:
        data.update(extra)
    try:
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"generation record is not JSON-serialisable: {exc}") from exc
    return data


def build_definition(spec: ManifestSpec) -> dict[str, Any]:
    """c2pa's manifest definition (JSON-able dict) for ``spec``."""
    actions: list[dict[str, Any]] = []
    if spec.generated:
        actions.append(
            {"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA, "softwareAgent": SOFTWARE_AGENT}
        )
    else:
        if spec.parent is None:
            raise InputError("an edited (not generated) asset needs its input file as a parent ingredient")
        actions.append(
            {"action": "c2pa.opened", "softwareAgent": SOFTWARE_AGENT, "parameters": {"ingredientIds": [spec.parent.label]}}
        )
        if spec.soft_binding is not None:
            actions.append(
                {"action": "c2pa.edited", "softwareAgent": SOFTWARE_AGENT, "description": "audio watermark embedded"}
            )
    assertions: list[dict[str, Any]] = []
    if spec.soft_binding is not None:
        actions.append({"action": "c2pa.watermarked.bound", "softwareAgent": SOFTWARE_AGENT})
        assertions.append({"label": "c2pa.soft-binding", "data": soft_binding_assertion(spec.soft_binding)})
    assertions.insert(0, {"label": "c2pa.actions", "data": {"actions": actions}})
    if spec.generation_record is not None:
        assertions.append({"label": GENERATION_LABEL, "data": spec.generation_record})
    definition: dict[str, Any] = {
        "label": spec.label,
        "claim_generator_info": [SOFTWARE_AGENT],
        "format": spec.mime_type,
        "assertions": assertions,
    }
    if spec.title:
        definition["title"] = spec.title
    return valid_unicode(definition)

