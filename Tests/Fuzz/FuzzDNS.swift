// libFuzzer entry point for the DNS responder's codec, built by scripts/fuzz.sh with
// `swiftc -sanitize=fuzzer,address -parse-as-library` together with
// Sources/LocalNLBModel/DNSMessage.swift. Any input may be given. The properties checked:
// - the parser never crashes, whatever the bytes;
// - every answer it leads to is well formed: the id echoed, QR set, the question echoed, and a
//   query's answer parses as a response of the same length it says it has.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDNS(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = count == 0 ? [] : Array(UnsafeRawBufferPointer(start: start, count: count))
    switch DNSMessage.parse(bytes) {
    case .drop:
        precondition(bytes.count < 12 || bytes[2] & 0x80 != 0, "dropped a query")
    case .formatError(let id, let question):
        let answer = DNSMessage.response(id: id, recursionDesired: false, code: .formatError, question: question)
        precondition(answer.count == 12 + question.count && answer[3] & 0x0F == 1, "a FORMERR answer is malformed")
    case .query(let query):
        precondition(
            query.question.count >= 5 && query.question.count <= 260, "question of \(query.question.count) bytes")
        // (The name, read as UTF-8 with replacement characters for other bytes, may be longer in UTF-8
        // than on the wire: it is only compared with the load balancers' names.)
        let answer = DNSMessage.response(
            id: query.id, recursionDesired: query.recursionDesired, code: .noError, question: query.question,
            type: query.type, addresses: [[127, 0, 0, 1]], edns: query.edns)
        precondition(answer[0] == bytes[0] && answer[1] == bytes[1] && answer[2] & 0x80 != 0, "header not echoed")
        precondition(Array(answer[12..<12 + query.question.count]) == query.question, "question not echoed")
        precondition(answer.count == 12 + query.question.count + 16 + (query.edns ? 11 : 0), "answer length")
    }
    return 0
}
