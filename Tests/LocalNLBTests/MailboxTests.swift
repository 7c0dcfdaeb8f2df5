import Foundation
import Glibc
import ProxyProtocol
import Synchronization
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The control plane's posts to a loop that is stopping: each job runs exactly once or is refused,
/// and ringing the loop never touches a descriptor the loop has given back.
@Suite struct Mailboxes {
    /// One loop with no listeners on a thread of its own, ended by a posted shutdown.
    static func startLoop(handle: LoopHandle) throws -> pthread_t {
        let descriptors = try Poller.Descriptors.make()
        let snapshot = RoutingSnapshot(
            configuration: configuration(targets: []), groups: [], listeners: [], tickNanoseconds: 1_000_000)
        var options = LoadBalancerOptions()
        options.log = { _ in }
        return try startThread { [options] in
            EventLoop(handle: handle, descriptors: descriptors, snapshot: snapshot, loopCount: 1, options: options)
                .run()
        }
    }

    @Test func postsRacingALoopsEndRunOnceOrAreRefused() throws {
        let bell = try ControlBell()
        for round in 0..<200 {
            let handle = try LoopHandle(index: 0, controlWake: bell.wake)
            let thread = try Self.startLoop(handle: handle)
            let ran = Atomic<Int>(0)
            let accepted = Atomic<Int>(0)
            let poster = try startThread {
                for _ in 0..<50 where handle.post({ _ in ran.add(1, ordering: .relaxed) }) {
                    accepted.add(1, ordering: .relaxed)
                }
            }
            // The shutdown lands somewhere among the posts: before, between or after them.
            if round % 3 != 0 { usleep(UInt32(round % 7) * 20) }
            handle.post { $0.beginShutdown(reason: "test") }
            pthread_join(poster, nil)
            pthread_join(thread, nil)
            #expect(handle.hasEnded)
            #expect(ran.load(ordering: .relaxed) == accepted.load(ordering: .relaxed))
            // After the end: refused, nothing waits for an answer that never comes, and the eventfd
            // that rings the loop is still its own (closed only with the handle).
            #expect(!handle.post { _ in Issue.record("a job ran on a loop that had ended") })
            #expect(handle.perform { _ in 1 } == nil)
            #expect(fcntl(handle.wake.fd, F_GETFD) >= 0)
        }
    }
}

/// Each descriptor has one owner: in debug builds, closing one twice traps at once, before the second
/// close could hit a descriptor another owner got since.
@Suite struct DescriptorOwnership {
    @Test func closingADescriptorTwiceTraps() async {
        await #expect(processExitsWith: .failure) {
            let fd = try Socket.stream(for: .v4(IPv4Address(127, 0, 0, 1)))
            closeDescriptor(fd)
            closeDescriptor(fd)
        }
    }

    /// An event loop closes all it opened before it ends; one that leaves a descriptor open traps.
    @Test func aLoopThatLeaksADescriptorTraps() async {
        await #expect(processExitsWith: .failure) {
            let bell = try ControlBell()
            let handle = try LoopHandle(index: 0, controlWake: bell.wake)
            let thread = try Mailboxes.startLoop(handle: handle)
            handle.post { _ in _ = try? Socket.stream(for: .v4(IPv4Address(127, 0, 0, 1))) }
            handle.post { $0.beginShutdown(reason: "test") }
            pthread_join(thread, nil)
        }
    }

    @Test func theLedgerFollowsOpenAndClose() throws {
        let fd = try Socket.stream(for: .v4(IPv4Address(127, 0, 0, 1)))
        #expect(DescriptorLedger.isOpen(fd))
        closeDescriptor(fd)
        let reopened = try Socket.stream(for: .v4(IPv4Address(127, 0, 0, 1)))
        defer { closeDescriptor(reopened) }
        #expect(DescriptorLedger.isOpen(reopened))
    }
}
