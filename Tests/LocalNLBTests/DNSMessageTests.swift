import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// The responder's DNS codec, byte for byte (RFC 1035; EDNS's OPT per RFC 6891).
@Suite struct DNSMessages {
    /// `dig web.example A` as dig sends it: id 0x1234, RD, one question, an OPT record.
    static let query: [UInt8] =
        [0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1]
        + [3] + Array("Web".utf8) + [7] + Array("example".utf8) + [0, 0, 1, 0, 1]
        + [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]

    @Test func aQueryIsRead() {
        guard case .query(let query) = DNSMessage.parse(Self.query) else {
            Issue.record("not read as a query")
            return
        }
        #expect(query.id == 0x1234 && query.recursionDesired && query.isStandardQuery)
        #expect(query.name == "web.example" && query.type == 1 && query.class == 1 && query.edns)
        #expect(query.question == Array(Self.query[12..<29]))
    }

    @Test func anAnswerIsWritten() {
        let answer = DNSMessage.response(
            id: 0x1234, recursionDesired: true, code: .noError, question: Array(Self.query[12..<29]), type: 1,
            addresses: [[127, 0, 1, 1]], ttl: 60, edns: true)
        #expect(Array(answer[0..<12]) == [0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 1])
        #expect(
            Array(answer[29..<45]) == [0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 1, 1])
        #expect(Array(answer[45...]) == [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0])
    }

    @Test func brokenMessagesAreFormatErrorsOrDropped() {
        #expect(DNSMessage.parse([1, 2, 3]) == .drop)
        var response = Self.query
        response[2] |= 0x80
        #expect(DNSMessage.parse(response) == .drop)  // a response is never answered
        #expect(DNSMessage.parse(Array(Self.query[0..<20])) == .formatError(id: 0x1234, question: []))
        var twoQuestions = Self.query
        twoQuestions[5] = 2
        #expect(DNSMessage.parse(twoQuestions) == .formatError(id: 0x1234, question: []))
        var pointer = Self.query
        pointer[12] = 0xC0  // compression in a question's name
        #expect(DNSMessage.parse(pointer) == .formatError(id: 0x1234, question: []))
        #expect(DNSMessage.parse(Self.query + [0]) == .formatError(id: 0x1234, question: Array(Self.query[12..<29])))
    }

    /// Found by the fuzzer: label bytes that are not UTF-8 read as replacement characters, the
    /// question still echoed as it came.
    @Test func labelsThatAreNotUTF8AreRead() {
        let message: [UInt8] = [0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0x82, 0x41, 0, 0, 1, 0, 1]
        guard case .query(let query) = DNSMessage.parse(message) else {
            Issue.record("not read as a query")
            return
        }
        #expect(query.name == "\u{FFFD}a" && query.question == Array(message[12...]))
    }
}
