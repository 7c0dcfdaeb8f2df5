// Thin wrappers over the Linux calls Glibc's Swift module does not export. Nothing else lives here.
#ifndef CLOCALNLB_H
#define CLOCALNLB_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>

int clnb_epoll_create(void);
int clnb_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// Waits for events; fills `events` and `datas` (parallel arrays of `max` entries).
int clnb_epoll_wait(int epfd, uint32_t *events, uint64_t *datas, int max, int timeout_ms);

int clnb_timerfd_create(void);
/// Arms a one-shot timer `ns` nanoseconds from now (0 disarms).
int clnb_timerfd_arm(int fd, int64_t ns);

int clnb_eventfd(void);
/// A blocking eventfd: one thread waits in read(2) until another writes.
int clnb_eventfd_blocking(void);
/// A signalfd for SIGTERM, SIGINT and SIGHUP; blocks them for the calling thread first.
int clnb_signalfd_daemon(void);
/// Reads one signal from a signalfd; returns the signal number, or -1 with errno.
int clnb_signalfd_read(int fd);

ssize_t clnb_splice(int fd_in, int fd_out, size_t len);
int clnb_pipe2(int fds[2]);
int clnb_pipe_set_size(int fd, int size);
/// The pipe's capacity in bytes, or -1.
int clnb_pipe_get_size(int fd);
int clnb_accept4(int fd, struct sockaddr *addr, socklen_t *len);
/// recvmmsg(2) of up to `count` datagrams, datagram i into `buffers + i * slot` (at most `slot` bytes),
/// its length into `lengths[i]` (flagged truncated with `truncated[i]`) and its source into
/// `sources[i]`. Returns how many arrived (0 when none waits), or -1 with errno.
int clnb_recv_batch(int fd, void *buffers, size_t slot, unsigned count, struct sockaddr_storage *sources,
                    unsigned *lengths, unsigned char *truncated);
int clnb_socket(int domain);
/// Standard output flushed at each newline (a piped report is read line by line).
void clnb_stdout_line_buffered(void);
/// Blocks SIGTERM and SIGINT in this thread and the threads it starts later, then waits for one.
int clnb_wait_termination(void);
/// Blocks SIGTERM and SIGINT for this thread and the threads it starts from now on.
void clnb_block_termination(void);

/// The CPUs this process may run on (its affinity mask), at most `capacity` of them, lowest first;
/// their count, or -1 with errno set.
int clnb_allowed_cpus(int *cpus, int capacity);
/// Keeps the calling thread on one CPU; 0, or an errno value.
int clnb_pin_thread(int cpu);

extern const uint32_t CLNB_EPOLLIN;
extern const uint32_t CLNB_EPOLLOUT;
extern const uint32_t CLNB_EPOLLERR;
extern const uint32_t CLNB_EPOLLHUP;
extern const uint32_t CLNB_EPOLLRDHUP;
extern const uint32_t CLNB_EPOLLPRI;
extern const uint32_t CLNB_EPOLLET;
extern const int CLNB_EPOLL_CTL_ADD;
extern const int CLNB_EPOLL_CTL_MOD;
extern const int CLNB_EPOLL_CTL_DEL;
extern const int CLNB_IP_TRANSPARENT;
extern const int CLNB_IPV6_TRANSPARENT;
extern const int CLNB_IP_BIND_ADDRESS_NO_PORT;

#endif
