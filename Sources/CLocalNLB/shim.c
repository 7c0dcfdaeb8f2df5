#include "CLocalNLB.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

int clnb_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int clnb_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int clnb_epoll_wait(int epfd, uint32_t *events, uint64_t *datas, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        events[i] = evs[i].events;
        datas[i] = evs[i].data.u64;
    }
    return n;
}

int clnb_timerfd_create(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); }

int clnb_timerfd_arm(int fd, int64_t ns) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    if (ns > 0) {
        spec.it_value.tv_sec = ns / 1000000000;
        spec.it_value.tv_nsec = ns % 1000000000;
    }
    return timerfd_settime(fd, 0, &spec, NULL);
}

int clnb_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }
int clnb_eventfd_blocking(void) { return eventfd(0, EFD_CLOEXEC); }

int clnb_signalfd_daemon(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int clnb_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n != (ssize_t)sizeof info) return -1;
    return (int)info.ssi_signo;
}

ssize_t clnb_splice(int fd_in, int fd_out, size_t len) {
    return splice(fd_in, NULL, fd_out, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

int clnb_pipe2(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }

int clnb_pipe_set_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
int clnb_pipe_get_size(int fd) { return fcntl(fd, F_GETPIPE_SZ); }

int clnb_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int clnb_socket(int domain) { return socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

void clnb_stdout_line_buffered(void) { setvbuf(stdout, NULL, _IOLBF, 0); }

static void termination_set(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

void clnb_block_termination(void) {
    sigset_t set;
    termination_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int clnb_wait_termination(void) {
    sigset_t set;
    termination_set(&set);
    int received = 0;
    while (sigwait(&set, &received) != 0) {}
    return received;
}

const uint32_t CLNB_EPOLLIN = EPOLLIN;
const uint32_t CLNB_EPOLLOUT = EPOLLOUT;
const uint32_t CLNB_EPOLLERR = EPOLLERR;
const uint32_t CLNB_EPOLLHUP = EPOLLHUP;
const uint32_t CLNB_EPOLLRDHUP = EPOLLRDHUP;
const uint32_t CLNB_EPOLLPRI = EPOLLPRI;
const uint32_t CLNB_EPOLLET = EPOLLET;
const int CLNB_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
const int CLNB_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
const int CLNB_EPOLL_CTL_DEL = EPOLL_CTL_DEL;
const int CLNB_IP_TRANSPARENT = IP_TRANSPARENT;
const int CLNB_IPV6_TRANSPARENT = IPV6_TRANSPARENT;
const int CLNB_IP_BIND_ADDRESS_NO_PORT = IP_BIND_ADDRESS_NO_PORT;

int clnb_recv_batch(int fd, void *buffers, size_t slot, unsigned count, struct sockaddr_storage *sources,
                    unsigned *lengths, unsigned char *truncated) {
    struct mmsghdr messages[64];
    struct iovec vectors[64];
    if (count > 64) count = 64;
    memset(messages, 0, sizeof(struct mmsghdr) * count);
    for (unsigned i = 0; i < count; i++) {
        vectors[i].iov_base = (char *)buffers + (size_t)i * slot;
        vectors[i].iov_len = slot;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &sources[i];
        messages[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    }
    int received;
    do {
        received = recvmmsg(fd, messages, count, MSG_DONTWAIT, NULL);
    } while (received < 0 && errno == EINTR);
    if (received < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    for (int i = 0; i < received; i++) {
        lengths[i] = messages[i].msg_len;
        truncated[i] = (messages[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    }
    return received;
}

int clnb_allowed_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < capacity; cpu++) {
        if (CPU_ISSET(cpu, &set)) cpus[count++] = cpu;
    }
    return count;
}

int clnb_pin_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
