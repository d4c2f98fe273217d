"""Video: `upscale_video` streams a file's frames through the engine and keeps its other streams.

Needs PyAV (`pip install 'srgan[video]'`), whose wheels carry FFmpeg: no system ffmpeg is used.
The containers it writes are `srgan.images.VIDEO_CONTAINERS`.
"""

from .colour import Colour, ColourError, colour_of
from .pipeline import (
           CODECS,
           VideoError,
           VideoOptions,
           VideoSummary,
           is_video,
           upscale_video,
)

__all__ = ["CODECS", "Colour", "ColourError", "VideoError", "VideoOptions", "VideoSummary", "colour_of", "is_video",
           "upscale_video"]
