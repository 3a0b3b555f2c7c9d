"""File formats read without a media library: the MP4 box reader (probe, stream_probe) and file
kinds (file_kinds). The media layer (dropcut_media, PyAV) does the rest, for Prepare and Stitch."""
