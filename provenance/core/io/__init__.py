"""Audio and video I/O: read, stream, write and lossy round trips, through soundfile and PyAV.

Modules: :mod:`.read`, :mod:`.write`, :mod:`.roundtrip` (lossy codecs in memory), :mod:`.tags`
(title, artist, cover pictures carried to an output), :mod:`.video`
(replacing a video's audio track, or rewriting each of its audio tracks, while copying the rest), and :mod:`.common` (format tables, checks, sample conversions).

Backends
    * soundfile (libsndfile) reads and writes WAV (also RF64/WAVEX), FLAC, Ogg Vorbis, AIFF, CAF,
      W64 and AU (and reads what else libsndfile reads: an IMA ADPCM or GSM 6.10 WAV is written
      back as PCM, see :func:`output_subtype`).
    * PyAV (FFmpeg inside its wheels) reads everything else (MP3, AAC/M4A, Opus, the audio
      track of MP4/MOV/MKV/WebM) and writes MP3, AAC (M4A/MP4/MOV/MKV/ADTS) and Opus.
      No ffmpeg binary and no torchaudio are involved.

Conventions
    * Samples are float32 ``(channels, frames)`` at full scale [-1, 1]; rates are in Hz,
      positions and durations in seconds (``*_s``) or samples (``*_frames``).
    * Multichannel audio uses the WAV/FFmpeg channel order (5.1 = FL FR FC LFE BL BR).
    * Integer outputs (PCM_16/24/32) are rounded to the nearest step and clipped to the integer
      range, never wrapped; float samples beyond [-1, 1] are therefore clipped when written to an
      integer format. Float outputs (FLOAT/DOUBLE) keep such samples as they are.
    * Lossy writers resample when the codec cannot carry the rate (Opus always runs at 48 kHz;
      MP3 stops at 48 kHz, AAC at 96 kHz); the file then holds the codec's rate.
    * Every output is written to a temporary file beside the target and renamed on success.
    * Every failure is a :class:`~provenance.core.errors.InputError` or
      :class:`~provenance.core.errors.FormatError` naming the file and the problem; raw
      soundfile/PyAV exceptions never escape.
"""

from provenance.core.io.common import LOSSY_CODECS, LOSSY_SUBTYPES, WRITE_FORMATS, timeline_start_s
from provenance.core.io.read import (
    audio_info,
    audio_track_count,
    check_decodes,
    is_video,
    is_video_extension,
    iter_audio_blocks,
    main_audio_stream,
    main_audio_track,
    read_audio,
)
from provenance.core.io.roundtrip import encode_decode
from provenance.core.io.tags import Picture, Tags, carry_metadata, copy_tags, copy_wav_chunks, read_tags, write_tags
from provenance.core.io.video import (
    check_video_output,
    replace_audio_track,
    replace_audio_track_stream,
    rewrite_audio_tracks_stream,
    video_start_s,
)
from provenance.core.io.write import AudioWriter, output_subtype, write_audio

__all__ = [
    "AudioWriter",
    "audio_info",
    "audio_track_count",
    "check_decodes",
    "carry_metadata",
    "check_video_output",
    "copy_tags",
    "copy_wav_chunks",
    "encode_decode",
    "is_video",
    "is_video_extension",
    "iter_audio_blocks",
    "main_audio_stream",
    "main_audio_track",
    "output_subtype",
    "Picture",
    "read_audio",
    "read_tags",
    "replace_audio_track",
    "replace_audio_track_stream",
    "rewrite_audio_tracks_stream",
    "Tags",
    "timeline_start_s",
    "video_start_s",
    "write_audio",
    "write_tags",
    "WRITE_FORMATS",
    "LOSSY_CODECS",
    "LOSSY_SUBTYPES",
]
