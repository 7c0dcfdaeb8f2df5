import CLocalNLB
import LocalNLBDataPlane
import LocalNLBModel

/// A control-plane listener (the control API, DNS over TCP) taken out of the poller because accept
/// found no descriptor left: a ready listener that cannot be accepted from would wake the control
/// plane at once, forever (100 % of a CPU). It listens again after a pause; the clients wait in its
/// backlog meanwhile, as they would for a busy server.
package struct PausedAccept {
    package var fd: Int32
    package var kind: ControlPlane.Kind
    package var until: UInt64
}

extension ControlPlane {
    static let acceptPauseNanoseconds: UInt64 = 100_000_000

    /// One connection from a control-plane listener, or nil: none waiting, one that went away, or no
    /// descriptor left (then the listener pauses, and the event log says so at most every 10 s).
    func acceptControlConnection(_ fd: Int32, kind: Kind, what: String) -> Int32? {
        do {
            guard case .done(let (client, _)) = try Socket.accept(fd) else { return nil }
            return client
        } catch  where error.errno == .tooManyOpenFiles || error.errno == .fileTableFull {
            poller.remove(fd)
            pausedAccepts.append(PausedAccept(fd: fd, kind: kind, until: now + Self.acceptPauseNanoseconds))
            if onceEvery10s(&lastDescriptorWarning, now: now) {
                options.log(
                    "\(what): \(error.errno) — not accepting for 100 ms at a time until one frees (raise ulimit -n)")
            }
            return nil
        } catch {
            // ECONNABORTED and the like: that client is gone; the poller says when another waits.
            return nil
        }
    }

    /// On each tick: paused listeners whose pause is over listen again.
    func resumePausedAccepts() {
        guard !pausedAccepts.isEmpty else { return }
        pausedAccepts.removeAll { paused in
            guard now >= paused.until else { return false }
            do {
                try poller.add(paused.fd, events: CLNB_EPOLLIN, token: token(paused.kind, 0, 0))
                return true
            } catch {
                return false
            }
        }
    }

    /// A listener about to close leaves the paused list first (its number may be handed out again).
    func forgetPausedAccept(_ fd: Int32) {
        pausedAccepts.removeAll { $0.fd == fd }
    }
}
