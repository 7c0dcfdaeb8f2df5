/// DNS messages as the load balancer's responder reads and writes them (RFC 1035): one question in,
/// `A`/`AAAA` answers out. Plain Swift over bytes, no sockets: the fuzzer builds it on its own.
package enum DNSMessage {
    package static let typeA: UInt16 = 1
    package static let typeAAAA: UInt16 = 28
    static let typeOPT: UInt16 = 41
    package static let classIN: UInt16 = 1

    package enum ResponseCode: UInt8 {
        case noError = 0
        case formatError = 1
        case serverFailure = 2
        case notImplemented = 4
        case refused = 5
    }

    /// A query's one question, and what the answer must echo.
    package struct Query: Equatable {
        package var id: UInt16
        package var recursionDesired: Bool
        /// The name in lower case, dot-separated, without the final dot.
        package var name: String
        package var type: UInt16
        package var `class`: UInt16
        /// The question as it came (name, type, class): echoed in the answer.
        package var question: [UInt8]
        /// The query carried an EDNS `OPT` record: the answer carries one too.
        package var edns: Bool
        /// Opcode 0 (QUERY); any other is answered NOTIMP.
        package var isStandardQuery: Bool
    }

    package enum Parsed: Equatable {
        case query(Query)
        /// Not a query we can read, but its id is known: answered FORMERR.
        case formatError(id: UInt16, question: [UInt8])
        /// Too short to answer, or itself a response: dropped.
        case drop
    }

    package static func parse(_ bytes: [UInt8]) -> Parsed {
        guard bytes.count >= 12 else { return .drop }
        let id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        let flags = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        guard flags & 0x8000 == 0 else { return .drop }  // a response: never answer one (no loops)
        let counts = (0..<4).map { UInt16(bytes[4 + 2 * $0]) << 8 | UInt16(bytes[5 + 2 * $0]) }
        guard counts[0] == 1, counts[1] == 0, counts[2] == 0, counts[3] <= 1 else {
            return .formatError(id: id, question: [])
        }
        var offset = 12
        var labels: [String] = []
        var total = 0
        while true {
            guard offset < bytes.count else { return .formatError(id: id, question: []) }
            let length = Int(bytes[offset])
            offset += 1
            if length == 0 { break }
            // A query's name is never compressed; labels are at most 63 bytes, names 255.
            guard length <= 63, offset + length <= bytes.count else { return .formatError(id: id, question: []) }
            total += length + 1
            guard total <= 255 else { return .formatError(id: id, question: []) }
            labels.append(String(decoding: bytes[offset..<offset + length], as: UTF8.self).lowercased())
            offset += length
        }
        guard offset + 4 <= bytes.count else { return .formatError(id: id, question: []) }
        let type = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        let questionClass = UInt16(bytes[offset + 2]) << 8 | UInt16(bytes[offset + 3])
        let question = Array(bytes[12..<offset + 4])
        offset += 4
        var edns = false
        if counts[3] == 1 {
            // The additional record may only be EDNS's OPT: root name, type 41, class, TTL, RDATA.
            guard offset + 11 <= bytes.count, bytes[offset] == 0,
                UInt16(bytes[offset + 1]) << 8 | UInt16(bytes[offset + 2]) == typeOPT
            else { return .formatError(id: id, question: question) }
            let length = Int(UInt16(bytes[offset + 9]) << 8 | UInt16(bytes[offset + 10]))
            guard offset + 11 + length == bytes.count else { return .formatError(id: id, question: question) }
            edns = true
        } else if offset != bytes.count {
            return .formatError(id: id, question: question)
        }
        return .query(
            Query(
                id: id, recursionDesired: flags & 0x0100 != 0, name: labels.joined(separator: "."), type: type,
                class: questionClass, question: question, edns: edns, isStandardQuery: (flags >> 11) & 0xF == 0))
    }

    /// An answer: the question echoed, then one record per address (4 bytes for `A`, 16 for `AAAA`),
    /// named by a pointer to the question, with `ttl`.
    package static func response(
        id: UInt16, recursionDesired: Bool, code: ResponseCode, question: [UInt8], type: UInt16 = 0,
        addresses: [[UInt8]] = [], ttl: UInt32 = 60, edns: Bool = false, authoritative: Bool = true
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12 + question.count + addresses.count * 28 + 11)
        func u16(_ value: UInt16) { out += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        u16(id)
        var flags: UInt16 = 0x8000 | UInt16(code.rawValue)
        if authoritative { flags |= 0x0400 }
        if recursionDesired { flags |= 0x0100 }
        u16(flags)
        u16(question.isEmpty ? 0 : 1)
        u16(UInt16(addresses.count))
        u16(0)
        u16(edns ? 1 : 0)
        out += question
        for address in addresses {
            u16(0xC00C)  // the name: a pointer to the question's, at offset 12
            u16(type)
            u16(classIN)
            u16(UInt16(ttl >> 16))
            u16(UInt16(ttl & 0xFFFF))
            u16(UInt16(address.count))
            out += address
        }
        if edns {
            // OPT: root name, type 41, our UDP payload size (1232, the DNS flag day's), no flags, no data.
            out.append(0)
            u16(typeOPT)
            u16(1232)
            out += [0, 0, 0, 0, 0, 0]
        }
        return out
    }
}
