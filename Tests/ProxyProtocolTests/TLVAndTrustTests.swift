import ProxyProtocol
import Testing

/// A deterministic generator, so a failing random case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A v2 PROXY TCP4 header 192.0.2.1:8080 → 192.0.2.2:80 carrying `tlvs` (hex).
func v2WithTLVs(_ tlvs: String) -> [UInt8] {
    let tlvBytes = hex(tlvs)
    let length = 12 + tlvBytes.count
    return hex(signature) + [0x21, 0x11, UInt8(length >> 8), UInt8(length & 0xFF)]
        + hex("c0000201 c0000202 1f90 0050") + tlvBytes
}

struct TLVVector: CustomStringConvertible, Sendable {
    var name: String
    var tlvs: String
    var expected: [ProxyTLVValue]
    var description: String { name }
}

let validTLVs: [TLVVector] = [
    TLVVector(name: "ALPN h2", tlvs: "01 0002 6832", expected: [.alpn(Array("h2".utf8))]),
    TLVVector(
        name: "AUTHORITY", tlvs: "02 000b 6578616d706c652e636f6d", expected: [.authority("example.com")]),
    TLVVector(name: "NOOP 3 bytes", tlvs: "04 0003 000000", expected: [.noop(3)]),
    TLVVector(
        name: "UNIQUE_ID of 128 bytes", tlvs: "05 0080" + String(repeating: "ab", count: 128),
        expected: [.uniqueID([UInt8](repeating: 0xAB, count: 128))]),
    TLVVector(
        name: "SSL with VERSION and CN",
        tlvs: "20 0015 01 00000000" + "21 0007 544c5376312e33" + "22 0003 616263",  // client SSL, verify 0
        expected: [
            .ssl(
                ProxySSLInfo(
                    clientFlags: 1, verify: 0,
                    subTLVs: [
                        ProxyTLV(type: 0x21, value: Array("TLSv1.3".utf8)),
                        ProxyTLV(type: 0x22, value: Array("abc".utf8)),
                    ]))
        ]),
    TLVVector(name: "NETNS", tlvs: "30 0004 626c7565", expected: [.netns("blue")]),
    TLVVector(
        name: "AWS VPC endpoint", tlvs: "ea 0007 01 767063652d31", expected: [.awsVPCEndpointID("vpce-1")]),
    TLVVector(name: "AWS other subtype", tlvs: "ea 0002 02 ff", expected: [.aws(subtype: 2, value: [0xFF])]),
    TLVVector(name: "unregistered type kept raw", tlvs: "e5 0002 0102", expected: [.unknown([1, 2])]),
]

struct InvalidTLVVector: CustomStringConvertible, Sendable {
    var name: String
    var tlvs: String
    var error: ProxyProtocolError
    var description: String { name }
}

let invalidTLVs: [InvalidTLVVector] = [
    InvalidTLVVector(
        name: "UNIQUE_ID of 129 bytes", tlvs: "05 0081" + String(repeating: "ab", count: 129),
        error: .v2InvalidTLV(type: 0x05, reason: "UNIQUE_ID is 129 bytes, more than 128")),
    InvalidTLVVector(
        name: "CRC32C of 3 bytes", tlvs: "03 0003 000000",
        error: .v2InvalidTLV(type: 0x03, reason: "CRC32C is 3 bytes, not 4")),
    InvalidTLVVector(
        name: "SSL of 4 bytes", tlvs: "20 0004 01000000",
        error: .v2InvalidTLV(type: 0x20, reason: "SSL is 4 bytes, less than 5")),
    InvalidTLVVector(
        name: "SSL sub-TLV past the end", tlvs: "20 0008 01 00000000 21 0009",
        error: .v2InvalidTLV(type: 0x20, reason: "an SSL sub-TLV runs past the end")),
    InvalidTLVVector(
        name: "AWS without subtype", tlvs: "ea 0000",
        error: .v2InvalidTLV(type: 0xEA, reason: "AWS TLV has no subtype byte")
    ),
]

@Suite struct TLVDecoding {
    @Test(arguments: validTLVs) func decodesByType(vector: TLVVector) throws {
        let bytes = v2WithTLVs(vector.tlvs)
        guard case .header(let header, let consumed) = try ProxyHeaderParser().parse(bytes) else {
            Issue.record("no header")
            return
        }
        #expect(consumed == bytes.count)
        #expect(try header.decodedTLVs() == vector.expected)
        #expect(header.encoded() == bytes)
    }

    @Test(arguments: invalidTLVs) func rejectsMalformedValues(vector: InvalidTLVVector) {
        #expect(throws: vector.error) { try ProxyHeaderParser().parse(v2WithTLVs(vector.tlvs)) }
    }

    @Test func sslAccessors() throws {
        let bytes = v2WithTLVs("20 0015 05 00000000 21 0007 544c5376312e33 22 0003 616263")
        guard case .header(let header, _) = try ProxyHeaderParser().parse(bytes) else { return }
        let ssl = try #require(header.ssl)
        #expect(ssl.connectedOverSSL)
        #expect(ssl.version == "TLSv1.3")
        #expect(ssl.commonName == "abc")
        #expect(ssl.encoded == hex("05 00000000 21 0007 544c5376312e33 22 0003 616263"))
    }

    /// What HAProxy sends with `send-proxy-v2` and `proxy-v2-options crc32c,unique-id,authority`.
    @Test func haproxyShapedHeader() throws {
        var header = ProxyHeader(
            version: .v2,
            addresses: .inet(source: IPEndpoint("127.0.0.1:40000")!, destination: IPEndpoint("127.0.0.1:8443")!),
            tlvs: [
                ProxyTLV(.authority, value: Array("app.example".utf8)),
                ProxyTLV(.crc32c, value: [0, 0, 0, 0]),
                ProxyTLV(.uniqueID, value: Array("7F000001:9C40_7F000001:20FB_5F3C2A1B_0000:1A2B".utf8)),
            ])
        let bytes = header.encoded()
        guard case .header(let parsed, let consumed) = try ProxyHeaderParser().parse(bytes) else {
            Issue.record("no header")
            return
        }
        #expect(consumed == bytes.count)
        #expect(parsed.crc32c == .valid)
        #expect(parsed.authority == "app.example")
        #expect(parsed.uniqueID == Array("7F000001:9C40_7F000001:20FB_5F3C2A1B_0000:1A2B".utf8))
        // Any byte changed after encoding breaks the checksum.
        var tampered = bytes
        tampered[tampered.count - 1] ^= 0x01
        #expect(throws: ProxyProtocolError.self) { try ProxyHeaderParser().parse(tampered) }
        header.tlvs.removeAll()
        #expect(header.encoded().count == 28)
    }

    @Test func udpAndUnixFamilies() throws {
        let udp6 = hex(
            signature + "21 22 0024" + "20010db8000000000000000000000001" + "20010db8000000000000000000000002"
                + "0035 0035")
        guard case .header(let h6, _) = try ProxyHeaderParser().parse(udp6) else { return }
        #expect(h6.transport == .datagram)
        #expect(h6.familyName == "UDP6")
        #expect(h6.encoded() == udp6)
        let path = Array("/run/app.sock".utf8)
        let unix = ProxyHeader(version: .v2, addresses: .unix(source: path, destination: Array("/run/lb.sock".utf8)))
        let bytes = unix.encoded()
        #expect(bytes.count == 16 + 216)
        guard case .header(let parsed, let consumed) = try ProxyHeaderParser().parse(bytes) else { return }
        #expect(consumed == 232)
        #expect(parsed.addresses == .unix(source: path, destination: Array("/run/lb.sock".utf8)))
        #expect(parsed.familyName == "UNIX")
    }
}

@Suite struct Properties {
    /// Every valid vector, split at random points, parses the same as in one piece.
    @Test func randomSplitsParseTheSame() throws {
        var rng = SplitMix64(state: 42)
        for vector in validVectors.map(\.bytes) + validTLVs.map({ v2WithTLVs($0.tlvs) }) {
            let whole = try ProxyHeaderParser().parse(vector)
            for _ in 0..<20 {
                var decoder = ProxyHeaderDecoder()
                var offset = 0
                var result = ProxyParseResult.needMoreData
                while offset < vector.count {
                    let size = Int.random(in: 1...max(1, vector.count - offset), using: &rng)
                    result = try decoder.feed(vector[offset..<(offset + size)])
                    offset += size
                    if case .header = result { break }
                    #expect(result == .needMoreData)
                }
                #expect(result == whole)
            }
        }
    }

    /// Random bytes never crash the parser; they give a result or a typed error.
    @Test func randomBytesNeverCrash() {
        var rng = SplitMix64(state: 7)
        let prefixes: [[UInt8]] = [[], hex(signature), hex(signature + "21 11"), Array("PROXY ".utf8)]
        for round in 0..<20_000 {
            let prefix = prefixes[round % prefixes.count]
            let count = Int.random(in: 0...300, using: &rng)
            let bytes = prefix + (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? ProxyHeaderParser(maximumV2Length: 512).parse(bytes)
        }
    }

    /// Random headers: encode, then parse, gives the header back.
    @Test func encodeThenParseIsTheIdentity() throws {
        var rng = SplitMix64(state: 99)
        func endpoint(v6: Bool) -> IPEndpoint {
            let ip: IPAddress =
                v6
                ? .v6(IPv6Address(bytes: (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) })!)
                : .v4(IPv4Address(.random(in: 0...255, using: &rng), .random(in: 0...255, using: &rng), 7, 9))
            return IPEndpoint(ip: ip, port: .random(in: 0...65535, using: &rng))
        }
        for _ in 0..<500 {
            let v6 = Bool.random(using: &rng)
            let version: ProxyHeader.Version = Bool.random(using: &rng) ? .v1 : .v2
            var header = ProxyHeader(
                version: version, addresses: .inet(source: endpoint(v6: v6), destination: endpoint(v6: v6)))
            if version == .v2 {
                header.transport = Bool.random(using: &rng) ? .stream : .datagram
                for _ in 0..<Int.random(in: 0...3, using: &rng) {
                    let type = [UInt8(0x01), 0x02, 0x04, 0x05, 0x30, 0xE7].randomElement(using: &rng)!
                    let length = Int.random(in: 0...40, using: &rng)
                    header.tlvs.append(
                        ProxyTLV(type: type, value: (0..<length).map { _ in .random(in: 0...255, using: &rng) }))
                }
                if Bool.random(using: &rng) { header.tlvs.append(ProxyTLV(.crc32c, value: [0, 0, 0, 0])) }
            }
            let bytes = header.encoded()
            guard case .header(let parsed, let consumed) = try ProxyHeaderParser().parse(bytes) else {
                Issue.record("no header for \(header)")
                continue
            }
            #expect(consumed == bytes.count)
            #expect(parsed.addresses == header.addresses)
            #expect(parsed.tlvs.count == header.tlvs.count)
            #expect(parsed.encoded() == bytes)
        }
    }
}

@Suite struct Trust {
    @Test func cidrMatching() {
        let range = CIDR("198.51.100.0/24")!
        #expect(range.contains(.v4(IPv4Address(198, 51, 100, 1))))
        #expect(!range.contains(.v4(IPv4Address(198, 51, 101, 1))))
        #expect(range.contains(IPAddress("::ffff:198.51.100.9")!))
        #expect(CIDR("2001:db8::/32")!.contains(IPAddress("2001:db8:1::5")!))
        #expect(!CIDR("2001:db8::/32")!.contains(IPAddress("2001:db9::5")!))
        #expect(CIDR("10.0.0.0/7")!.contains(IPAddress("11.255.0.1")!))
        #expect(CIDR("0.0.0.0/0")!.contains(IPAddress("203.0.113.10")!))
        #expect(CIDR("10.0.0.1")?.prefixLength == 32)
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(CIDR("nonsense/8") == nil)
    }

    @Test func onlyATrustedPeerChangesTheClientAddress() {
        let trust = ProxyTrust(trusted: [CIDR("198.51.100.1/32")!])
        let header = ProxyHeader(
            version: .v1,
            addresses: .inet(source: IPEndpoint("203.0.113.10:40000")!, destination: IPEndpoint("198.51.100.1:80")!))
        let lb = IPEndpoint("198.51.100.1:51000")!
        let forger = IPEndpoint("203.0.113.66:51000")!
        #expect(trust.clientAddress(peer: lb, header: header) == IPEndpoint("203.0.113.10:40000"))
        #expect(trust.clientAddress(peer: forger, header: header) == forger)
        #expect(
            trust.evaluate(peer: forger.ip)
                == .untrusted(
                    reason:
                        "peer 203.0.113.66 is not a trusted proxy (trusted: 198.51.100.1/32); its PROXY header is ignored"
                ))
    }
}

/// Inputs the fuzzer (scripts/fuzz.sh) once found failing, kept as regression tests.
@Suite struct FuzzRegressions {
    /// Re-encoding a parsed header and parsing it again gives the same header.
    static func roundTrips(_ bytes: [UInt8]) throws {
        let parser = ProxyHeaderParser(maximumV2Length: 2048, rejectsChecksumMismatch: false)
        guard case .header(let header, _) = try parser.parse(bytes) else { return }
        let encoded = header.encoded()
        guard case .header(let again, let used) = try parser.parse(encoded) else {
            Issue.record("re-encoded header does not parse")
            return
        }
        #expect(used == encoded.count)
        #expect(again.addresses == header.addresses)
        #expect(again.tlvs.map(\.type) == header.tlvs.map(\.type))
        #expect(again.crc32c != .invalid)
    }

    /// Two CRC32C TLVs: only the first is the checksum (the encoder once zeroed and filled the last).
    @Test func twoCRC32CTLVs() throws {
        try Self.roundTrips(
            hex(
                "0d0a0d0a000d0a515549540a21110054ac1f0771ac1f0a1fc8f20050030004e8d6892dea001701767063652d30"
                    + "38643262663135666163353030f20050030004e8d6892dea00170176316339040024000000000000000000"
                    + "000000000000000000000000000000000000000000000000000000"))
    }
}

@Suite struct Templates {
    /// A template writes, for any addresses, the very bytes the encoder gives (CRC32C included).
    @Test func aTemplateWritesWhatTheEncoderWrites() throws {
        var rng = SplitMix64(state: 2024)
        func endpoint(v6: Bool) -> IPEndpoint {
            let ip: IPAddress =
                v6
                ? .v6(IPv6Address(bytes: (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) })!)
                : .v4(
                    IPv4Address(
                        .random(in: 0...255, using: &rng), .random(in: 0...255, using: &rng),
                        .random(in: 0...255, using: &rng), .random(in: 0...255, using: &rng)))
            return IPEndpoint(ip: ip, port: .random(in: 0...65535, using: &rng))
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
        defer { buffer.deallocate() }
        for v6 in [false, true] {
            for vpc in [nil, "vpce-0123456789abcdef0"] {
                let placeholder = endpoint(v6: v6)
                let shapes = [
                    ProxyHeader.aws(source: placeholder, destination: placeholder, vpcEndpointID: vpc),
                    ProxyHeader(version: .v2, addresses: .inet(source: placeholder, destination: placeholder)),
                ]
                for shape in shapes {
                    let template = try #require(ProxyV2Template(shape))
                    for _ in 0..<50 {
                        let (source, destination) = (endpoint(v6: v6), endpoint(v6: v6))
                        var expected = shape
                        expected.addresses = .inet(source: source, destination: destination)
                        let count = template.write(source: source, destination: destination, to: buffer)
                        let written = Array(UnsafeRawBufferPointer(start: buffer, count: count))
                        #expect(written == expected.encoded())
                        guard case .header(let parsed, _) = try ProxyHeaderParser().parse(written) else {
                            Issue.record("not a whole header")
                            continue
                        }
                        #expect(parsed.addresses == .inet(source: source, destination: destination))
                    }
                }
            }
        }
    }

    /// Only a v2 PROXY header with an IP address block makes a template.
    @Test func otherHeadersMakeNoTemplate() {
        let v4 = IPEndpoint(ip: .v4(IPv4Address(10, 0, 0, 1)), port: 1)
        #expect(ProxyV2Template(ProxyHeader(version: .v1, addresses: .inet(source: v4, destination: v4))) == nil)
        #expect(ProxyV2Template(ProxyHeader.awsHealthCheck()) == nil)
    }
}
