/// AWS's predefined security policies for TLS listeners (DescribeSSLPolicies): each policy's protocols
/// and ciphers in AWS's priority order, as the NLB guide's "Security policies" tables give them. The
/// table holds the policies whose cipher lists are settled; a name outside it is AWS's
/// `SSLPolicyNotFound` here. TLS listeners (a later issue) enforce these.
package struct SSLPolicy: Sendable {
    package var name: String
    package var protocols: [String]
    package var ciphers: [String]
    package var loadBalancerTypes = ["application", "network"]

    /// Why a policy AWS has is not served here, or nil: the post-quantum hybrids (`-PQ-`) key-exchange with
    /// ML-KEM, which needs OpenSSL 3.5; localnlb builds against the system's OpenSSL 3.0.
    /// The FIPS policies need OpenSSL's FIPS provider (Debian's OpenSSL 3 ships none), and
    /// `ELBSecurityPolicy-TLS-1-0-2015-04` exists for DES-CBC3-SHA, which Debian builds OpenSSL without.
    package static func unservedReason(_ name: String) -> String? {
        guard name.hasPrefix("ELBSecurityPolicy-") else { return nil }
        if name.contains("-PQ-") {
            return "\(name) is a post-quantum hybrid policy (ML-KEM key exchange, X25519MLKEM768 and the like), which "
                + "the OpenSSL 3.0 localnlb is built with cannot offer (OpenSSL 3.5 can); choose a policy without -PQ-"
        }
        if name.contains("-FIPS-") {
            return "\(name) is a FIPS policy: AWS serves it from a FIPS 140-3 validated module, and the system's "
                + "OpenSSL here has no FIPS provider; choose the policy of the same name without -FIPS- (for example "
                + "ELBSecurityPolicy-TLS13-1-2-2021-06)"
        }
        if name == "ELBSecurityPolicy-TLS-1-0-2015-04" {
            return "\(name) differs from ELBSecurityPolicy-2016-08 only by the DES-CBC3-SHA cipher, which the "
                + "system's OpenSSL is built without; choose ELBSecurityPolicy-2016-08"
        }
        return nil
    }

    /// AWS's default for listeners made with the API, the CLI, CloudFormation and the CDK.
    package static let defaultName = "ELBSecurityPolicy-2016-08"

    private static let tls13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"]
    /// ECDHE suites with GCM only (the "Res" policies).
    private static let ecdheGCM = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
    ]
    /// ECDHE suites with GCM and CBC-SHA2, in AWS's order.
    private static let ecdheSHA2 = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384",
    ]
    /// Every ECDHE suite of ELBSecurityPolicy-2016-08, in its order.
    private static let ecdheAll = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA",
        "ECDHE-ECDSA-AES256-SHA",
    ]
    /// The same, with the two AES256-SHA suites ECDSA first (ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06's order).
    private static let ecdheAllECDSAFirst =
        Array(ecdheAll.dropLast(2)) + ["ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA"]
    private static let rsaKeyExchange = [
        "AES128-GCM-SHA256", "AES128-SHA256", "AES128-SHA", "AES256-GCM-SHA384", "AES256-SHA256", "AES256-SHA",
    ]

    package static let all: [SSLPolicy] = [
        SSLPolicy(
            name: "ELBSecurityPolicy-2016-08", protocols: ["TLSv1", "TLSv1.1", "TLSv1.2"],
            ciphers: ecdheAll + rsaKeyExchange),
        SSLPolicy(
            name: "ELBSecurityPolicy-TLS13-1-0-2021-06", protocols: ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"],
            ciphers: tls13 + ecdheAll + rsaKeyExchange),
        SSLPolicy(
            name: "ELBSecurityPolicy-TLS13-1-2-2021-06", protocols: ["TLSv1.2", "TLSv1.3"],
            ciphers: tls13 + ecdheSHA2),
        SSLPolicy(
            name: "ELBSecurityPolicy-TLS13-1-2-Res-2021-06", protocols: ["TLSv1.2", "TLSv1.3"],
            ciphers: tls13 + ecdheGCM),
        SSLPolicy(
            name: "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06", protocols: ["TLSv1.2", "TLSv1.3"],
            ciphers: tls13 + ecdheSHA2 + ["AES128-GCM-SHA256", "AES128-SHA256", "AES256-GCM-SHA384", "AES256-SHA256"]),
        SSLPolicy(
            name: "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06", protocols: ["TLSv1.2", "TLSv1.3"],
            ciphers: tls13 + ecdheAllECDSAFirst + rsaKeyExchange),
        SSLPolicy(
            name: "ELBSecurityPolicy-TLS13-1-1-2021-06", protocols: ["TLSv1.1", "TLSv1.2", "TLSv1.3"],
            ciphers: tls13 + ecdheAll + rsaKeyExchange),
        SSLPolicy(name: "ELBSecurityPolicy-TLS13-1-3-2021-06", protocols: ["TLSv1.3"], ciphers: tls13),
        SSLPolicy(
            name: "ELBSecurityPolicy-TLS-1-1-2017-01", protocols: ["TLSv1.1", "TLSv1.2"],
            ciphers: ecdheAll + rsaKeyExchange),
        SSLPolicy(
            name: "ELBSecurityPolicy-TLS-1-2-2017-01", protocols: ["TLSv1.2"],
            ciphers: ecdheSHA2 + ["AES128-GCM-SHA256", "AES128-SHA256", "AES256-GCM-SHA384", "AES256-SHA256"]),
        SSLPolicy(
            name: "ELBSecurityPolicy-TLS-1-2-Ext-2018-06", protocols: ["TLSv1.2"], ciphers: ecdheAll + rsaKeyExchange),
        SSLPolicy(name: "ELBSecurityPolicy-FS-2018-06", protocols: ["TLSv1", "TLSv1.1", "TLSv1.2"], ciphers: ecdheAll),
        SSLPolicy(name: "ELBSecurityPolicy-FS-1-1-2019-08", protocols: ["TLSv1.1", "TLSv1.2"], ciphers: ecdheAll),
        SSLPolicy(name: "ELBSecurityPolicy-FS-1-2-2019-08", protocols: ["TLSv1.2"], ciphers: ecdheAll),
        SSLPolicy(name: "ELBSecurityPolicy-FS-1-2-Res-2019-08", protocols: ["TLSv1.2"], ciphers: ecdheSHA2),
        SSLPolicy(name: "ELBSecurityPolicy-FS-1-2-Res-2020-10", protocols: ["TLSv1.2"], ciphers: ecdheGCM),
        // The NLB guide: "identical to ELBSecurityPolicy-2016-08".
        SSLPolicy(
            name: "ELBSecurityPolicy-2015-05", protocols: ["TLSv1", "TLSv1.1", "TLSv1.2"],
            ciphers: ecdheAll + rsaKeyExchange),
    ]
}

/// AWS's ALPN policy names (the protocol lists are the data plane's, `ALPNPolicy`).
package enum ALPNPolicyNames {
    package static let all = ["HTTP1Only", "HTTP2Only", "HTTP2Optional", "HTTP2Preferred", "None"]
}
