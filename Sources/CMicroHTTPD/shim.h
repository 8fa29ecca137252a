// Typed entry points for libmicrohttpd's variadic MHD_start_daemon / MHD_get_daemon_info:
// every option travels in one MHD_OPTION_ARRAY so Swift can build it as a plain array.
#ifndef WYRCAN_CMICROHTTPD_SHIM_H
#define WYRCAN_CMICROHTTPD_SHIM_H
#include <sys/types.h>
#include <sys/socket.h>
#include <stdint.h>
#include <microhttpd.h>

static inline struct MHD_Daemon *
wyr_mhd_start(unsigned int flags, uint16_t port,
              MHD_AccessHandlerCallback handler, void *handler_cls,
              struct MHD_OptionItem *options) {
    return MHD_start_daemon(flags, port, NULL, NULL, handler, handler_cls,
                            MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}

static inline uint16_t wyr_mhd_bound_port(struct MHD_Daemon *d) {
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

static inline struct MHD_OptionItem wyr_mhd_opt_uint(enum MHD_OPTION o, unsigned int v) {
    struct MHD_OptionItem it = { o, (intptr_t)v, NULL }; return it;
}
static inline struct MHD_OptionItem wyr_mhd_opt_ptr(enum MHD_OPTION o, const void *p) {
    struct MHD_OptionItem it = { o, 0, (void *)p }; return it;
}
static inline struct MHD_OptionItem wyr_mhd_opt_completed(MHD_RequestCompletedCallback cb, void *cls) {
    struct MHD_OptionItem it = { MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)cb, cls }; return it;
}
static inline struct MHD_OptionItem wyr_mhd_opt_end(void) {
    struct MHD_OptionItem it = { MHD_OPTION_END, 0, NULL }; return it;
}
#endif
