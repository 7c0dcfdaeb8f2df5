// libFuzzer entry point for the application load balancer's HTTP/1.x reader, built by scripts/fuzz.sh
// with `swiftc -sanitize=fuzzer,address -parse-as-library` together with
// Sources/LocalNLBDataPlane/HTTP/HTTPParser.swift. Any input may be given. The properties checked:
// - neither head parser, nor the chunked-body follower, ever crashes, whatever the bytes;
// - a complete head's offsets lie inside it (method before target, every field inside the head), and
//   a severe request is never called complete-and-compliant;
// - the chunked follower ends no later than the bytes it was given, fed whole or in two parts alike.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = count == 0 ? [] : Array(UnsafeRawBufferPointer(start: start, count: count))
    bytes.withUnsafeBytes { buffer in
        var head = HTTPHead()
        switch HTTPParser.parseRequest(buffer, into: &head) {
        case .complete:
            precondition(head.length <= buffer.count, "head longer than the input")
            precondition(head.methodEnd > 0 && head.methodEnd < head.targetStart, "method and target overlap")
            precondition(head.targetStart < head.targetEnd && head.targetEnd < head.length, "target outside the head")
            for field in head.fields {
                precondition(
                    field.nameStart < field.nameEnd && field.nameEnd <= field.valueStart
                        && field.valueStart <= field.valueEnd && Int(field.valueEnd) <= head.length,
                    "a field outside the head")
            }
            precondition(head.desync != .severe, "a severe request parsed as complete")
        case .incomplete, .malformed:
            break
        }
        var response = HTTPHead()
        if case .complete = HTTPParser.parseResponse(buffer, into: &response, requestMethodIsHEAD: false) {
            precondition(response.status >= 100 && response.status <= 999, "status \(response.status)")
            precondition(response.length <= buffer.count, "response head longer than the input")
        }
        var whole = ChunkedBody()
        let once = whole.consume(buffer)
        if case .ends(let n) = once { precondition(n <= buffer.count, "chunked end past the input") }
        // The same bytes in two parts end at the same place.
        let cut = buffer.count / 2
        var split = ChunkedBody()
        let first = split.consume(UnsafeRawBufferPointer(rebasing: buffer[..<cut]))
        switch (once, first) {
        case (.ends(let n), .ends(let m)):
            precondition(n == m, "the end moved when the bytes came in two parts")
        case (.ends(let n), .more):
            if case .ends(let m) = split.consume(UnsafeRawBufferPointer(rebasing: buffer[cut...])) {
                precondition(cut + m == n, "the end moved when the bytes came in two parts")
            } else {
                preconditionFailure("two parts did not end where the whole did")
            }
        default:
            break
        }
    }
    return 0
}
