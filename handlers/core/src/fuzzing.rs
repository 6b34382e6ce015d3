//! Entry points for the fuzz targets in `fuzz/` (see there). Not part of the public API.
