import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel
@testable import LocalNLBTools

/// SigV4 against AWS's published test suite (get-vanilla, get-vanilla-query-order-key-case,
/// post-vanilla: key AKIDEXAMPLE, region us-east-1, service `service`, 2015-08-30T12:36:00Z) and the
/// hash against FIPS 180-4's examples.
@Suite struct SignatureVersion4 {
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    static let scope = "20150830/us-east-1/service/aws4_request"
    static let headers = ["host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z"]

    @Test func sha256AndHMAC() {
        #expect(SigV4.hex(SigV4.sha256([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            SigV4.hex(SigV4.sha256(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // Two blocks (56 bytes of message push the length into a second block).
        #expect(
            SigV4.hex(SigV4.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // RFC 4231 test case 2.
        #expect(
            SigV4.hex(SigV4.hmac(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test(arguments: [
        ("GET", [String: String](), "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        (
            "GET", ["Param2": "value2", "Param1": "value1"],
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        ),
        ("POST", [String: String](), "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ])
    func theTestSuiteSignatures(method: String, query: [String: String], expected: String) {
        let request = SigV4.Request(method: method, path: "/", query: query, headers: Self.headers, body: [])
        #expect(
            SigV4.signature(
                request, signedHeaders: ["host", "x-amz-date"], amzDate: "20150830T123600Z", scope: Self.scope,
                secret: Self.secret) == expected)
    }

    /// The suite's cases with a payload: post-x-www-form-urlencoded (the body is hashed into the
    /// signature) and post-vanilla-query (parameters in the query string, an empty body).
    @Test func theTestSuiteCasesWithABodyOrAQuery() {
        var headers = Self.headers
        headers["content-type"] = "application/x-www-form-urlencoded"
        let form = SigV4.Request(
            method: "POST", path: "/", query: [:], headers: headers, body: Array("Param1=value1".utf8))
        #expect(
            SigV4.signature(
                form, signedHeaders: ["content-type", "host", "x-amz-date"], amzDate: "20150830T123600Z",
                scope: Self.scope, secret: Self.secret)
                == "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
        let query = SigV4.Request(
            method: "POST", path: "/", query: ["Param1": "value1"], headers: Self.headers, body: [])
        #expect(
            SigV4.signature(
                query, signedHeaders: ["host", "x-amz-date"], amzDate: "20150830T123600Z", scope: Self.scope,
                secret: Self.secret) == "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11")
        // A claimed payload hash must be the body's: the form's own hash passes, another body's does not.
        var claimed = form
        claimed.headers["x-amz-content-sha256"] = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
        #expect(SigV4.payloadProblem(claimed) == nil)
        claimed.body = Array("Param1=value2".utf8)
        #expect(SigV4.payloadProblem(claimed) != nil)
        // ...and the signature is over the body itself, whatever a header claims.
        #expect(
            SigV4.signature(
                claimed, signedHeaders: ["content-type", "host", "x-amz-date"], amzDate: "20150830T123600Z",
                scope: Self.scope, secret: Self.secret)
                != "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a")
    }

    /// AWS's 15 minutes of clock skew, either way (the test suite's date is 2015-08-30 12:36:00 UTC).
    @Test func aSignatureIsFreshForFifteenMinutes() {
        let signed = 1_440_938_160
        #expect(epochSeconds(amzDate: "20150830T123600Z") == signed)
        #expect(SigV4.freshnessProblem(amzDate: "20150830T123600Z", now: signed + 900) == nil)
        #expect(SigV4.freshnessProblem(amzDate: "20150830T123600Z", now: signed - 900) == nil)
        #expect(
            SigV4.freshnessProblem(amzDate: "20150830T123600Z", now: signed + 901)?.hasPrefix("Signature expired")
                == true)
        #expect(
            SigV4.freshnessProblem(amzDate: "20150830T123600Z", now: signed - 901)?.hasPrefix(
                "Signature not yet current")
                == true)
        #expect(SigV4.freshnessProblem(amzDate: "2015-08-30", now: signed) != nil)
    }

    @Test func authorizationHeadersParse() throws {
        let header =
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        let parsed = try #require(SigV4.Authorization(header))
        #expect(parsed.accessKeyID == "AKIDEXAMPLE" && parsed.scope == Self.scope)
        #expect(parsed.signedHeaders == ["host", "x-amz-date"])
        #expect(SigV4.Authorization("Bearer abc") == nil)
        #expect(SigV4.matches(parsed.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"))
        #expect(!SigV4.matches(parsed.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf30"))
    }
}
