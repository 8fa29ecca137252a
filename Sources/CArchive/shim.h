// libarchive has no variadic calls; this header only gathers what Wyrcan uses.
#ifndef WYRCAN_CARCHIVE_SHIM_H
#define WYRCAN_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
