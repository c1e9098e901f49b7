/* master.h — the master process of `workers = N` (see master.c). */
#ifndef WSGW_MASTER_H
#define WSGW_MASTER_H

#include <stddef.h>

#include "config.h"
#include "wsgw.h"

/* What a worker runs: a whole gateway on the given sockets; returns the
 * process exit status.  `slot` is 0..workers-1. */
typedef int (*worker_main_fn)(const wsgw_config_t *cfg, const wsgw_listen_fd_t *fds,
                              size_t n, int slot);

/* Runs the master until SIGTERM/SIGINT and returns the exit status.  It
 * takes ownership of `cfg` (heap-allocated, loaded from argc/argv/envp,
 * which it loads again on SIGHUP). */
int master_run(wsgw_config_t *cfg, int argc, char **argv, char **envp, worker_main_fn run);

#endif
