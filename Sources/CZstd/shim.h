// libzstd has no variadic calls; this header only gathers what Wyrcan uses.
#ifndef WYRCAN_CZSTD_SHIM_H
#define WYRCAN_CZSTD_SHIM_H
// For ZSTD_c_stableInBuffer (an "experimental" parameter since libzstd 1.4.5): the frame
// compressor asks for it and falls back to zstd's own input buffer if the library refuses it.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

static inline int wyr_zstd_stable_in_buffer_param(void) { return (int)ZSTD_c_stableInBuffer; }
#endif
