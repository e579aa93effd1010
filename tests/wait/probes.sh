#!/bin/sh
# The USDT probes (issue 28): where configure found <sys/sdt.h>, readelf
# -n shows every probe of the provider libctx in the shared library:
# create, cancel, wait_begin, wait_end and wake.  Skips (77) in a build
# without them, or without readelf.
set -u
lib=.libs/libctx.so
if ! grep -q '^#define HAVE_SDT 1' config.h 2>/dev/null; then
	echo "SKIP: built without <sys/sdt.h> (configure --with-sdt)"
	exit 77
fi
READELF=${READELF:-$(command -v readelf || true)}
if [ -z "$READELF" ]; then
	echo "SKIP: no readelf (binutils)"
	exit 77
fi
notes=$("$READELF" -n "$lib") || { echo "FAIL: readelf -n $lib"; exit 1; }
status=0
for p in create cancel wait_begin wait_end wake; do
	if echo "$notes" | grep -A1 "Provider: libctx" | grep -q "Name: $p\$"
	then
		echo "ok: libctx:$p"
	else
		echo "FAIL: no probe libctx:$p in $lib"
		status=1
	fi
done
[ $status = 0 ] || echo "$notes" | grep -A3 stapsdt
exit $status
