// libFuzzer entry point for the ProxyProtocol parser, built by scripts/fuzz.sh with
// `swiftc -sanitize=fuzzer,address -parse-as-library` together with Sources/ProxyProtocol.
// Any input may be given. The properties checked:
// - the parser never crashes, whatever the bytes (a typed error is fine);
// - a header it accepts encodes to bytes that parse to the same header;
// - the same bytes fed in two pieces give the same result as in one.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyProtocol(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = count == 0 ? [] : Array(UnsafeRawBufferPointer(start: start, count: count))
    let parser = ProxyHeaderParser(maximumV2Length: 2048, rejectsChecksumMismatch: false)
    let whole = Result { () throws(ProxyProtocolError) in try parser.parse(bytes) }

    if case .success(.header(let header, let consumed)) = whole {
        precondition(consumed > 0 && consumed <= bytes.count, "consumed \(consumed) of \(bytes.count)")
        let again = ProxyHeaderParser(maximumV2Length: 1 << 16, rejectsChecksumMismatch: false)
        guard case .header(let reparsed, let used)? = try? again.parse(header.encoded()) else {
            preconditionFailure("an accepted header does not parse after encoding: \(header)")
        }
        precondition(used == header.encoded().count, "re-parse used \(used) bytes")
        precondition(reparsed.addresses == header.addresses, "addresses changed: \(header) → \(reparsed)")
        // The encoder computes the CRC32C anew, so only its value may differ.
        func withoutCRC(_ tlvs: [ProxyTLV]) -> [ProxyTLV] {
            tlvs.map { $0.type == ProxyTLV.Kind.crc32c.rawValue ? ProxyTLV(type: $0.type, value: []) : $0 }
        }
        precondition(withoutCRC(reparsed.tlvs) == withoutCRC(header.tlvs), "TLVs changed: \(header) → \(reparsed)")
        precondition(reparsed.crc32c != .invalid, "an encoded header has a bad CRC32C")
        precondition(reparsed.command == header.command, "command changed")
    }

    if bytes.count > 1 {
        let cut = Int(bytes[0]) % bytes.count
        var decoder = ProxyHeaderDecoder(parser: parser)
        let first = Result { () throws(ProxyProtocolError) in try decoder.feed(bytes[0..<cut]) }
        var split = first
        if case .success(.needMoreData) = first {
            split = Result { () throws(ProxyProtocolError) in try decoder.feed(bytes[cut...]) }
        }
        switch (whole, split) {
        case (.success(let a), .success(let b)):
            precondition(a == b || first.isSettled, "split at \(cut): \(a) vs \(b)")
        case (.failure(let a), .failure(let b)):
            precondition(a == b || first.isSettled, "split at \(cut): \(a) vs \(b)")
        default:
            precondition(first.isSettled, "split at \(cut) changed the outcome: \(whole) vs \(split)")
        }
    }
    return 0
}

extension Result where Success == ProxyParseResult {
    /// Decided on a prefix already (a header in the prefix, not a header, or an error).
    var isSettled: Bool {
        if case .success(.needMoreData) = self { return false }
        return true
    }
}
