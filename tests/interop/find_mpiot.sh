#!/bin/sh
# Print a directory containing the original micropython-iot package (iot/).
#
# Lookup: $MICROPYTHON_IOT_DIR, else extract HEAD:iot from the git repository
# $MICROPYTHON_IOT_REPO (default /work/.mirror/peterhinch+micropython-iot/repo)
# into $MPIOT_CACHE_DIR (default: system temp dir).
# Exit 0 and print the directory; 77 (skip) if no source is available;
# 2 if MICROPYTHON_IOT_DIR is set but does not hold iot/.
here=$(cd "$(dirname "$0")" && pwd) || exit 2
exec python3 "$here/mpiot_common.py" --locate
