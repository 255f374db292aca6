"""FoleySeal's keyed, robust audio watermark.

``embed(audio, key, payload)`` hides a 64-bit payload; ``detect(audio, key)`` finds it,
with a calibrated p-value and the marked time segments. See ``docs/watermark.md``.
"""

from provenance.watermark.detect import DEFAULT_THRESHOLD, detect
from provenance.watermark.embed import MIN_EMBED_S, embed, min_duration_s
from provenance.watermark.keys import WatermarkKey, load_key, new_key, save_key
from provenance.watermark.layout import PAYLOAD_BITS, SOFT_BINDING_ALG, WatermarkParams

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_EMBED_S",
    "PAYLOAD_BITS",
    "SOFT_BINDING_ALG",
    "WatermarkKey",
    "WatermarkParams",
    "detect",
    "embed",
    "load_key",
    "min_duration_s",
    "new_key",
    "save_key",
]
