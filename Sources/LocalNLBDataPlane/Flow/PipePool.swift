import Glibc
import LocalNLBModel

/// A loop's spare pipes. A flow holds pipes only while bytes are in them, so an idle flow costs its
/// two sockets and nothing more.
package struct PipePool {
    private var spare: [(read: Int32, write: Int32)] = []
    /// Spare pipes kept for reuse; each is two descriptors.
    static let maximumPooled = 256
    /// What a splicing direction may hold in its pipe. As root, 1 MiB: a bulk transfer then takes a
    /// sixteenth of the splice calls and wake-ups a 64 KiB pipe needs (single-stream throughput +40 %
    /// here). Other users keep the kernel's 64 KiB: `fs.pipe-user-pages-soft` (64 MiB of pipes per
    /// user) would run out after 64 pipes of 1 MiB, and the kernel then hands out pipes of 8 KiB.
    let splicePipeSize = geteuid() == 0 ? 1 << 20 : 65536

    /// Gives `d` a pipe, from the pool or new; false when none can be had.
    mutating func acquire(_ d: inout Direction) -> Bool {
        if d.hasPipe { return true }
        if let (r, w) = spare.popLast() {
            (d.pipeRead, d.pipeWrite) = (r, w)
            return true
        }
        // Every pipe must take a whole copy buffer (what send left over goes into an empty pipe).
        guard let fds = IO.pipe(preferred: splicePipeSize, minimum: EventLoop.copyBufferSize) else { return false }
        (d.pipeRead, d.pipeWrite) = fds
        return true
    }

    /// Takes an empty pipe back (a full pool closes it); a pipe with bytes in it stays with `d`
    /// unless they are discarded.
    package mutating func release(_ d: inout Direction, discardingBytes: Bool = false) {
        guard d.hasPipe, d.buffered == 0 || discardingBytes else { return }
        if d.buffered == 0 && spare.count < Self.maximumPooled {
            spare.append((d.pipeRead, d.pipeWrite))
        } else {
            // Bytes left in the pipe, or enough spare pipes: it cannot, or need not, be reused.
            closeDescriptor(d.pipeRead)
            closeDescriptor(d.pipeWrite)
        }
        d.pipeRead = -1
        d.pipeWrite = -1
    }

    mutating func closeAll() {
        for (r, w) in spare {
            closeDescriptor(r)
            closeDescriptor(w)
        }
        spare.removeAll()
    }
}
