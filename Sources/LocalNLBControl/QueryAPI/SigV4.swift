import LocalNLBDataPlane
import LocalNLBModel

/// AWS Signature Version 4, as the Query API checks it: SHA-256 and HMAC-SHA256 (FIPS 180-4,
/// RFC 2104) written here, since the toolchain ships no hash on Linux, and the canonical request,
/// string to sign and signing key of AWS's "Signature Version 4 signing process".
package enum SigV4 {
    // MARK: SHA-256

    private static let k: [UInt32] = [
        0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5, 0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
        0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3, 0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
        0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc, 0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
        0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7, 0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
        0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13, 0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
        0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3, 0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
        0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5, 0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
        0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208, 0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
    ]

    @inline(__always)
    private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { x >> n | x << (32 - n) }

    static func sha256(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [
            0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19,
        ]
        var data = message
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        let bits = UInt64(message.count) &* 8
        for shift in stride(from: 56, through: 0, by: -8) {
            data.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
        }
        var w = [UInt32](repeating: 0, count: 64)
        for block in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
                let j = block + i * 4
                w[i] =
                    UInt32(data[j]) << 24 | UInt32(data[j + 1]) << 16 | UInt32(data[j + 2]) << 8 | UInt32(data[j + 3])
            }
            for i in 16..<64 {
                let (x, y) = (w[i - 15], w[i - 2])
                let s0: UInt32 = rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3)
                let s1: UInt32 = rotr(y, 17) ^ rotr(y, 19) ^ (y >> 10)
                w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
            }
            var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
            for i in 0..<64 {
                let s1: UInt32 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                let choice: UInt32 = (e & f) ^ (~e & g)
                let t1: UInt32 = hh &+ s1 &+ choice &+ k[i] &+ w[i]
                let s0: UInt32 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                let majority: UInt32 = (a & b) ^ (a & c) ^ (b & c)
                let t2: UInt32 = s0 &+ majority
                (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
            }
            for (i, value) in [a, b, c, d, e, f, g, hh].enumerated() { h[i] = h[i] &+ value }
        }
        return h.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> UInt32(24 - $0 * 8)) } }
    }

    static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var block = key.count > 64 ? sha256(key) : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        return sha256(block.map { $0 ^ 0x5C } + sha256(block.map { $0 ^ 0x36 } + message))
    }

    package static func hex(_ bytes: [UInt8]) -> String { hexString(bytes) }

    // MARK: Signing

    /// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters stay, everything else `%XX`.
    package static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let digits = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
            }
        }
        return out
    }

    /// The request as SigV4 sees it.
    package struct Request {
        package var method: String
        package var path: String
        /// Decoded query parameters.
        package var query: [String: String]
        /// Header names in lower case.
        package var headers: [String: String]
        package var body: [UInt8]

        package init(
            method: String, path: String, query: [String: String], headers: [String: String], body: [UInt8]
        ) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
        }
    }

    /// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
    package struct Authorization: Equatable {
        package var accessKeyID: String
        /// `date/region/service/aws4_request`
        package var scope: String
        package var signedHeaders: [String]
        package var signature: String

        package init?(_ header: String) {
            guard header.hasPrefix("AWS4-HMAC-SHA256 ") else { return nil }
            var fields: [String: String] = [:]
            for part in header.dropFirst(17).split(separator: ",") {
                let pair = part.trimmingCharacters(in: " ").split(separator: "=", maxSplits: 1)
                guard pair.count == 2 else { return nil }
                fields[String(pair[0])] = String(pair[1])
            }
            guard let credential = fields["Credential"], let signed = fields["SignedHeaders"],
                let signature = fields["Signature"], let slash = credential.firstIndex(of: "/")
            else { return nil }
            accessKeyID = String(credential[..<slash])
            scope = String(credential[credential.index(after: slash)...])
            signedHeaders = signed.split(separator: ";").map(String.init)
            self.signature = signature
        }
    }

    /// The hex signature of `request` for `signedHeaders` at `amzDate` (`20150830T123600Z`) in `scope`.
    package static func signature(
        _ request: Request, signedHeaders: [String], amzDate: String, scope: String, secret: String
    ) -> String {
        let query = request.query.map { (encode($0.key), encode($0.value)) }.sorted { $0 < $1 }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let headers = signedHeaders.map { name in
            let value = (request.headers[name] ?? "").split(separator: " ", omittingEmptySubsequences: true)
                .joined(separator: " ")
            return "\(name):\(value)\n"
        }.joined()
        let path = request.path.split(separator: "/", omittingEmptySubsequences: false).map { encode(String($0)) }
            .joined(separator: "/")
        // The body itself, always: a hash the client only claims (`X-Amz-Content-Sha256`) would let a
        // captured signature carry another body. `payloadProblem` refuses a claim that differs.
        let payload = hex(sha256(request.body))
        let canonical = [
            request.method, path.isEmpty ? "/" : path, query, headers, signedHeaders.joined(separator: ";"), payload,
        ].joined(separator: "\n")
        let toSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n" + hex(sha256(Array(canonical.utf8)))
        var key = Array(("AWS4" + secret).utf8)
        for part in scope.split(separator: "/") { key = hmac(key: key, Array(part.utf8)) }
        return hex(hmac(key: key, Array(toSign.utf8)))
    }

    /// The error message when `X-Amz-Content-Sha256` is sent and is not the body's SHA-256, else nil.
    /// (`UNSIGNED-PAYLOAD` is S3's alone; ELBv2 signs every body.)
    static func payloadProblem(_ request: Request) -> String? {
        guard let claimed = request.headers["x-amz-content-sha256"] else { return nil }
        let actual = hex(sha256(request.body))
        guard claimed.lowercased() != actual else { return nil }
        return "The provided 'x-amz-content-sha256' header does not match what was computed: "
            + "the body's SHA-256 is \(actual)"
    }

    /// AWS accepts a signature made at most 15 minutes from its own clock either way; the error message
    /// when `amzDate` is further from `now`, else nil.
    static func freshnessProblem(amzDate: String, now: Int) -> String? {
        guard let signed = epochSeconds(amzDate: amzDate) else {
            return "X-Amz-Date \(amzDate) is not a date in the form 20150830T123600Z"
        }
        if signed < now - 900 {
            return "Signature expired: \(amzDate) is now earlier than 15 minutes before the server's clock"
        }
        if signed > now + 900 {
            return "Signature not yet current: \(amzDate) is later than 15 minutes after the server's clock"
        }
        return nil
    }

    /// Constant-time comparison of two signatures.
    package static func matches(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in character: Character) -> String {
        var text = Substring(self)
        while text.first == character { text.removeFirst() }
        while text.last == character { text.removeLast() }
        return String(text)
    }
}
