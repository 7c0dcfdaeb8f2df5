import CLocalNLB
import Glibc
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The calls a flow saves, and the conditions under which saving them is safe.
@Suite struct CallsSaved {
    /// A short read is taken to have reached the FIN only when the event showed the FIN and nothing
    /// that could stop a read short or turn it into a reset.
    @Test func aFINCountsAsReadOnlyWhenTheEventShowsNothingElse() {
        #expect(EventLoop.ReadExtent(CLNB_EPOLLIN) == .once)
        #expect(EventLoop.ReadExtent(CLNB_EPOLLIN | CLNB_EPOLLRDHUP) == .toQueuedFIN)
        #expect(EventLoop.ReadExtent(CLNB_EPOLLRDHUP) == .toQueuedFIN)
        for other in [CLNB_EPOLLHUP, CLNB_EPOLLERR, CLNB_EPOLLPRI] {
            #expect(EventLoop.ReadExtent(CLNB_EPOLLIN | CLNB_EPOLLRDHUP | other) == .toEnd)
        }
        #expect(EventLoop.ReadExtent(CLNB_EPOLLHUP) == .toEnd)
    }

    /// TCP_NODELAY reaches a target socket before its second write, never before its first.
    @Test func noDelayIsSetBeforeTheSecondWrite() throws {
        let fd = try Socket.stream(for: loopback)
        defer { closeDescriptor(fd) }
        func noDelay() -> Int32 {
            var value: Int32 = -1
            var length = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length)
            return value
        }
        var direction = Direction()
        direction.noDelay = .beforeSecondWrite
        direction.willWrite(to: fd)
        #expect(noDelay() == 0)
        direction.willWrite(to: fd)
        #expect(noDelay() == 1)
        #expect(direction.noDelay == .set)
    }
}
