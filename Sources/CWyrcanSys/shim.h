// Typed wrappers for the Linux calls Wyrcan's boot agent needs that are variadic in libc
// (syscall, ioctl) and so unavailable to Swift.
#ifndef WYRCAN_CWYRCANSYS_SHIM_H
#define WYRCAN_CWYRCANSYS_SHIM_H
#include <unistd.h>
#include <sched.h>
#include <malloc.h>
#include <sys/syscall.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <linux/fs.h>
#include <linux/reboot.h>

static inline long wyr_kexec_file_load(int kernel_fd, int initrd_fd, const char *cmdline, unsigned long flags) {
    unsigned long len = 0;
    while (cmdline[len]) len++;
    return syscall(SYS_kexec_file_load, kernel_fd, initrd_fd, len + 1, cmdline, flags);
}

/* glibc's mmap threshold, fixed at `bytes` (M_MMAP_THRESHOLD is a macro Swift cannot import). */
static inline int wyr_set_mmap_threshold(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes);
}

static inline long wyr_finit_module(int fd, const char *params, int flags) {
    return syscall(SYS_finit_module, fd, params, flags);
}

static inline long wyr_init_module(const void *image, unsigned long length, const char *params) {
    return syscall(SYS_init_module, image, length, params);
}

/* Lets the calling thread run only when no other thread wants the CPU (idle: SCHED_IDLE), or
   normally again (SCHED_OTHER). */
static inline int wyr_set_thread_idle(int idle) {
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(0, idle ? 5 /* SCHED_IDLE */ : 0 /* SCHED_OTHER */, &param);
}

/* Blocks until the kernel's random pool is initialized (flags 0), then fills buf. */
static inline long wyr_getrandom(void *buf, unsigned long len) {
    return syscall(SYS_getrandom, buf, len, 0);
}

static inline int wyr_get_inode_flags(int fd, long *flags) { return ioctl(fd, FS_IOC_GETFLAGS, flags); }
/* The width of the terminal on fd in columns; 0 when it is not one (or does not say). */
static inline int wyr_terminal_columns(int fd) { struct winsize ws; return ioctl(fd, TIOCGWINSZ, &ws) == 0 ? ws.ws_col : 0; }
static inline int wyr_set_inode_flags(int fd, const long *flags) { return ioctl(fd, FS_IOC_SETFLAGS, flags); }
static inline long wyr_fs_immutable_flag(void) { return FS_IMMUTABLE_FL; }

static inline int wyr_reboot_kexec(void) { return reboot(LINUX_REBOOT_CMD_KEXEC); }
static inline int wyr_reboot_restart(void) { return reboot(LINUX_REBOOT_CMD_RESTART); }
static inline int wyr_reboot_power_off(void) { return reboot(LINUX_REBOOT_CMD_POWER_OFF); }
#endif
