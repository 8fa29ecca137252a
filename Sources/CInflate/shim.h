// zlib and ISA-L's igzip, for inflating gzip layers. zlib is linked; ISA-L only lends its types
// here: Wyrcan loads libisal.so.2 at run time (GzipInflater), so a machine or an initramfs
// without it inflates with zlib.
#ifndef WYRCAN_CINFLATE_SHIM_H
#define WYRCAN_CINFLATE_SHIM_H
#include <zlib.h>
#include <isa-l/igzip_lib.h>

// inflateInit2 is a macro: gzip wrapper (16) + the largest window.
static inline int wyr_zlib_inflate_init_gzip(z_stream *stream) { return inflateInit2(stream, 16 + MAX_WBITS); }
#endif
